"""The web layer: blueprints by audience, the error pages and the shell commands."""

from newsletter.extensions import csrf
from newsletter.web import admin, api, errors, health, outbox_viewer, public


def register_blueprints(app):
    errors.register(app)
    app.json = api.JSONProvider(app)
    # Readers' forms are posted from the site's own pages and from mail clients
    # (RFC 8058 one-click), which carry no CSRF token; their links are the secret.
    csrf.exempt(public.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(outbox_viewer.bp)
