"""The web layer: blueprints by audience, the error pages and the shell commands."""

from werkzeug.routing import IntegerConverter

from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.extensions import csrf
from newsletter.web import (
    admin,
    admin_api,
    api,
    archive,
    errors,
    health,
    outbox_viewer,
    provider_events,
    public,
    tracking,
)


class RowIdConverter(IntegerConverter):
    """``<id:…>``: a row id, which fits an INTEGER column; a larger number in a URL is a 404,
    not a query that PostgreSQL refuses."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ROW_ID)


def register_blueprints(app):
    app.url_map.converters["id"] = RowIdConverter
    errors.register(app)
    app.json = api.JSONProvider(app)
    # Subscribers' forms are posted from the site's own pages and from mail clients
    # (RFC 8058 one-click), which carry no CSRF token; their links are the secret.
    csrf.exempt(public.bp)
    csrf.exempt(api.bp)
    # Takes JSON bodies only, which no other site can post with an admin's cookie.
    csrf.exempt(admin_api.bp)
    # Providers post without cookies or tokens; a signature or a password proves them.
    csrf.exempt(provider_events.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(archive.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(outbox_viewer.bp)
    app.register_blueprint(provider_events.bp)
    app.register_blueprint(tracking.bp)
