"""Every HTTP error answers in the caller's language: JSON under /api and /webhooks, a
page elsewhere."""

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


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
        return render_template(
            "public/message.html", title=f"{error.code} {error.name}", text=error.description
        ), error.code
