"""The local outbox in the browser, for running the service without a mail server.

Served only while mail goes to the outbox, and only to this machine: the
messages hold working confirmation links. A proxy on this machine makes every
visitor's request come from a loopback address, so a request that went through
one (any forwarding header, or TRUSTED_PROXIES set) is refused too.
"""

import ipaddress

from flask import Blueprint, abort, current_app, render_template, request

from newsletter.mail import outbox
from newsletter.mail.relay import uses_outbox

bp = Blueprint("outbox_viewer", __name__, url_prefix="/outbox")

# What proxies add: nginx's X-Real-IP, the de-facto X-Forwarded-*, RFC 7239's Forwarded.
PROXY_HEADERS = (
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "Forwarded",
    "X-Real-IP",
)


def is_loopback(address):
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def came_through_a_proxy():
    # ProxyFix (TRUSTED_PROXIES) keeps the original headers under X-Original-*, and
    # request.remote_addr is then a header's word: behind a proxy nothing here is local.
    return current_app.config["TRUSTED_PROXIES"] > 0 or any(
        name in request.headers for name in PROXY_HEADERS
    )


@bp.before_request
def only_local_outbox():
    if not uses_outbox() or came_through_a_proxy() or not is_loopback(request.remote_addr):
        abort(404)


@bp.get("/")
def index():
    return render_template("outbox_viewer/outbox.html", messages=outbox.messages())


@bp.get("/<key>")
def show(key):
    message = outbox.message(key)
    if message is None:
        abort(404)
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    return render_template(
        "outbox_viewer/message.html",
        message=message,
        html=html.get_content() if html else None,
        text=text.get_content() if text else None,
    )
