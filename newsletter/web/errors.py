"""Every HTTP error answers in the caller's language: JSON under /api and /webhooks, a
page elsewhere."""

from flask import jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

# The errors a subscriber may meet on a page, in Werkzeug's words, to translate them; any
# other error, or one that says something of its own, shows as it is.
PAGE_WORDS = {
    400: (
        _l("Bad Request"),
        _l("The browser (or proxy) sent a request that this server could not understand."),
    ),
    404: (
        _l("Not Found"),
        _l(
            "The requested URL was not found on the server. If you entered the URL manually "
            "please check your spelling and try again."
        ),
    ),
    405: (_l("Method Not Allowed"), _l("The method is not allowed for the requested URL.")),
    429: (
        _l("Too Many Requests"),
        _l("This user has exceeded an allotted request count. Try again later."),
    ),
}


def register(app):
    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = request.max_content_length
        error.description = f"The request is larger than this service takes ({limit:,} bytes)."
        return http_error(error)

    @app.errorhandler(HTTPException)
    def http_error(error):
        if request.path.startswith(("/api/", "/webhooks/")):
            return jsonify(error=error.description), error.code
        name, description = PAGE_WORDS.get(error.code, (error.name, error.description))
        if error.description != type(error).description:
            description = error.description
        return render_template(
            "public/message.html", title=f"{error.code} {name}", text=description
        ), error.code
