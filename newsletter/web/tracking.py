"""A tracked digest's links and pixel (docs/engagement.md): ``/r/<token>`` redirects to
the digest's own link, ``/o/<token>`` answers a 1x1 GIF; each records one event. A token
we did not sign, or that names no link of the digest, is a 404: never an open redirect."""

import base64

from flask import Blueprint, Response, abort, redirect, request

from newsletter.core.tokens import TokenInvalid
from newsletter.engagement import events, rules
from newsletter.extensions import limiter

bp = Blueprint("tracking", __name__)
# Nothing here is limited, and a redirect should not pay the limiter's bookkeeping.
limiter.exempt(bp)

# The smallest transparent GIF: 1x1, one colour.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# Every request must reach us to be counted; none may be answered from a cache.
NOT_STORED = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def seen() -> rules.Seen:
    return rules.Seen(request.method, request.user_agent.string, request.remote_addr)


def refused_by_browser() -> bool:
    """Global Privacy Control: the browser asks not to be tracked, and is counted with
    no name on it, as a subscriber who refused it on their preferences page."""
    return request.headers.get("Sec-GPC", "").strip() == "1"


@bp.get("/r/<token>")
def follow(token):
    """Both GET and HEAD redirect (Flask answers HEAD from GET): a scanner's check never
    breaks the subscriber's link."""
    try:
        url = events.click(token, seen(), refused_by_browser())
    except (TokenInvalid, events.NotTracked):
        abort(404)
    response = redirect(url, 302)
    response.headers.update(NOT_STORED)
    return response


@bp.get("/o/<token>")
def opened(token):
    try:
        events.open_(token, seen(), refused_by_browser())
    except (TokenInvalid, events.NotTracked):
        abort(404)
    return Response(PIXEL_GIF, mimetype="image/gif", headers=NOT_STORED)
