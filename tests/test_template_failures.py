"""A stored template that fails when it is rendered (saved before the sandbox refused
what it does, or taken down a branch by real data) never makes a 500 and never stops a
send in silence: pages show the built-in template, a digest pauses saying why until the
admin fixes it, and a subscriber still gets their confirmation and welcome.

The broken templates are written straight into the database: the admin's form would
refuse them."""

import html
import logging
import re

from sqlalchemy import select

from harness import csrf_token
from newsletter.content import digests
from newsletter.content.models import Digest, DigestStatus, EmailTemplate
from newsletter.extensions import db
from newsletter.mail import templates
from tests.helpers import add_subscribers, wait_until, wait_until_sent
from tests.smtp import html_of, link_in, text_of

# What the sandbox has refused since it came, and what only real data makes too costly.
FORMAT_CALL = "{{ '{0}'.format(1) }}"
HUGE_RANGE = "{% for n in range(10**6) %}{{ n }}{% endfor %}"
FIXED_LINE = "Fixed by the editors."
FORMAT_REFUSED = "access to attribute 'format' of 'str' object is unsafe"


def store_template(app, name, part, source):
    """An admin's template as an older version kept it, past today's check."""
    with app.app_context():
        db.session.add(EmailTemplate(name=name, part=part, source=source))
        db.session.commit()


def post_form(client, path, page, **data):
    return client.post(path, data={"csrf_token": csrf_token(client.get(page)), **data})


def digest_row(app, digest_id):
    with app.app_context():
        digest = db.session.get(Digest, digest_id)
        return digest.status, digest.paused_reason, digests.progress(digest_id)


def warnings_naming(caplog, name):
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING
        and f"the template '{name}' failed" in record.getMessage()
    ]


def test_the_archive_and_the_admin_page_show_the_built_in_template_when_the_admins_fails(
    app, admin_client, smtp, worker, feed, caplog
):
    add_subscribers(app, 1)
    sent = app.test_cli_runner().invoke(args=["send-digest", "--subject", "Bridge week"])
    digest_id = int(sent.output)
    assert wait_until_sent(app, digest_id)["sent"] == 1
    store_template(app, "digest", "html", f"<p>{FORMAT_CALL}</p>{{{{ unsubscribe_url }}}}")
    visitor = app.test_client()

    with caplog.at_level(logging.WARNING, logger="newsletter.mail"):
        page = visitor.get(f"/archive/{digest_id}", follow_redirects=True)
        admin_page = admin_client.get(f"/admin/digests/{digest_id}")

    assert page.status_code == 200
    assert "Council approves new bridge" in page.text
    assert "<h1" in page.text, "the built-in template's heading"
    assert "failed" not in page.text, "the public sees the digest, not the admin's error"
    assert admin_page.status_code == 200
    [notice] = re.findall(r'<p class="error" role="alert">(.*?)</p>', admin_page.text, re.S)
    notice = " ".join(html.unescape(notice).split())
    assert f"Why: the template 'digest' failed: HTML part, Line 1: {FORMAT_REFUSED}" in notice
    assert 'href="/admin/email-templates/digest"' in notice
    assert "Council approves new bridge" in html.unescape(admin_page.text)
    [warning, *_] = warnings_naming(caplog, "digest")
    assert FORMAT_REFUSED in warning
    assert "built-in default was used" in warning


def test_a_digest_whose_template_fails_pauses_and_after_the_fix_each_reader_gets_it_once(
    app, admin_client, smtp, feed, start_worker_process
):
    subscribers = add_subscribers(app, 3)
    store_template(app, "digest", "html", f"{HUGE_RANGE}{{{{ unsubscribe_url }}}}")
    with app.app_context():
        digest_id = digests.create_digest("Bridge week").id
    page = f"/admin/digests/{digest_id}"
    worker = start_worker_process(app)

    assert post_form(admin_client, f"{page}/send", page).status_code == 302
    wait_until(lambda: digest_row(app, digest_id)[0] == DigestStatus.PAUSED, timeout=60)
    _status, reason, progress = digest_row(app, digest_id)
    assert reason.startswith("the template 'digest' failed: HTML part, Line 1: ")
    assert "10,000" in reason
    assert progress["pending"] == 3, "every copy is still owed"
    assert progress["sent"] == progress["failed"] == 0
    assert smtp.received == []
    shown = html.unescape(admin_client.get(page).text)
    assert f"Sending stopped by itself: {reason}" in shown
    wait_until(lambda: f"digest {digest_id} paused: {reason}" in worker.log.read_text())
    log = worker.log.read_text()
    assert re.search(rf"WARNING/\S+\] digest {digest_id} paused", log)
    assert "Traceback" not in log

    # The admin fixes the template through the form, which checks it, then resumes.
    editor = "/admin/email-templates/digest"
    with app.app_context():
        default_html, default_text = (
            templates.default_source("digest", p) for p in templates.PARTS
        )
    fixed = default_html.replace('<p class="footer">', f'<p>{FIXED_LINE}</p>\n  <p class="footer">')
    assert post_form(admin_client, editor, editor, html=fixed, text=default_text).status_code == 302
    assert post_form(admin_client, f"{page}/resume", page).status_code == 302

    assert wait_until_sent(app, digest_id, timeout=60)["sent"] == 3
    received = smtp.wait_for(3)
    assert sorted(message["To"] for message in received) == sorted(subscribers)
    assert all(FIXED_LINE in html_of(message) for message in received)
    with app.app_context():
        assert db.session.scalar(select(Digest.paused_reason).where(Digest.id == digest_id)) is None


def test_a_reader_gets_a_working_confirmation_and_a_welcome_whatever_the_templates_do(
    app, smtp, worker, feed, caplog
):
    store_template(app, "confirmation", "html", f"{FORMAT_CALL}{{{{ confirm_url }}}}")
    store_template(app, "confirmation", "text", f"{HUGE_RANGE}{{{{ confirm_url }}}}")
    store_template(app, "welcome", "text", "{{ 1 / 0 }}{{ unsubscribe_url }}")
    visitor = app.test_client()

    with caplog.at_level(logging.WARNING, logger="newsletter.mail"):
        assert visitor.post("/subscribe", data={"email": "ann@example.org"}).status_code < 400
        [confirmation] = smtp.wait_for(1)
        assert "10,000" not in text_of(confirmation)
        assert b"You're subscribed" in visitor.post(link_in(confirmation)).data
        welcome = smtp.wait_for(2)[1]

    assert welcome["To"] == "ann@example.org"
    assert "Council approves new bridge" in text_of(welcome)
    assert "Council approves new bridge" in html_of(welcome)
    [confirmation_warning, *_] = warnings_naming(caplog, "confirmation")
    assert FORMAT_REFUSED in confirmation_warning
    [welcome_warning, *_] = warnings_naming(caplog, "welcome")
    assert "failed: TEXT part, Line 1: division by zero" in welcome_warning


def test_the_check_refuses_str_format_whose_widths_pass_every_size_limit(app, admin_client):
    """Jinja hands out a sandboxed str.format of its own; a width in its fields would
    make a value of any size, so the sandbox refuses it as it always meant to."""
    editor = "/admin/email-templates/confirmation"
    source = "{{ '{0:>3000000}'.format(1)|length }}{{ confirm_url }}"
    refused = post_form(admin_client, editor, editor, html=source, text=source)
    assert refused.status_code == 400
    assert FORMAT_REFUSED in html.unescape(refused.text)
    with app.app_context():
        assert db.session.scalar(select(EmailTemplate.source)) is None
