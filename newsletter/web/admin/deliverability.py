"""What receivers will judge our mail by (SPF, DKIM, DMARC, links, complaints), and the
mail that came back to the bounce and unsubscribe addresses."""

from flask import render_template

from newsletter.admins import deliverability
from newsletter.bounces import inbound
from newsletter.web.admin import bp


@bp.get("/deliverability")
def deliverability_report():
    return render_template("admin/deliverability.html", checks=deliverability.run_checks())


@bp.get("/inbound")
def inbound_messages():
    """What came back to the bounce and unsubscribe addresses, and what became of it."""
    return render_template("admin/inbound.html", messages=inbound.recent())
