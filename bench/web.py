"""The web app ``python -m bench signup`` serves: the service's own app, configured from
the environment, plus one endpoint that does nothing. That endpoint measures what the
server and the framework cost on their own, the ceiling a sign-up is compared with.

    gunicorn 'bench.web:create_app()'
"""

from newsletter import create_app as create_service_app
from newsletter.extensions import csrf

NOOP_PATH = "/bench/noop"


def create_app():
    app = create_service_app()

    # POST, like a sign-up, so that wrk sends both the same request with the same body.
    @app.post(NOOP_PATH)
    @csrf.exempt
    def noop():
        return "", 204

    return app
