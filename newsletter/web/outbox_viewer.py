"""The local outbox in the browser, for running the service without a mail server.

Served only while mail goes to the outbox, and only to this machine: the
messages hold working confirmation links.
"""

import ipaddress

from flask import Blueprint, abort, render_template, request

from newsletter.mail import outbox
from newsletter.mail.relay import uses_outbox

bp = Blueprint("outbox_viewer", __name__, url_prefix="/outbox")


def is_loopback(address):
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


@bp.before_request
def only_local_outbox():
    if not uses_outbox() or not is_loopback(request.remote_addr):
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
