"""The dashboard: subscribers per status, the last 90 days drawn as a chart, the latest
digests' figures and what is sending."""

from flask import render_template

from newsletter.admins import stats
from newsletter.subscribers import admin_actions
from newsletter.web import charts
from newsletter.web.admin import bp


@bp.get("/")
def dashboard():
    history = stats.daily_history()
    recent_digests = stats.recent_digests()
    return render_template(
        "admin/dashboard.html",
        counts=admin_actions.status_counts(),
        history=history,
        chart=charts.list_chart(history),
        recent_digests=recent_digests,
        active_sends=stats.active_sends(counted=recent_digests),
        engagement_rates=stats.recent_engagement(),
    )
