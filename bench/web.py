"""The web app ``python -m bench signup`` and ``clicks`` serve: the service's own app,
configured from the environment, plus two endpoints that do next to nothing. They
measure what the server and the framework cost on their own, the ceiling a sign-up or
a tracked link's redirect is compared with.

    gunicorn 'bench.web:create_app()'
"""

from flask import redirect

from newsletter import create_app as create_service_app
from newsletter.extensions import csrf, limiter

NOOP_PATH = "/bench/noop"
BARE_REDIRECT_PATH = "/bench/redirect"
BARE_REDIRECT_TARGET = "https://news.example.com/2026/11/story-0"


def create_app():
    app = create_service_app()

    # POST, like a sign-up, so that wrk sends both the same request with the same body.
    @app.post(NOOP_PATH)
    @csrf.exempt
    def noop():
        return "", 204

    # A redirect and nothing else: what /r/<token> would cost if reading its token and
    # recording the click were free.
    # Spared the rate limiter's bookkeeping, as /r/<token> is.
    @app.get(f"{BARE_REDIRECT_PATH}/<token>")
    @limiter.exempt
    def bare_redirect(token):
        return redirect(BARE_REDIRECT_TARGET, 302)

    return app
