"""Admins edit the confirmation, welcome and digest emails in the browser: checked in
Jinja's sandbox with sample data before anything is kept, sent by real workers once
saved, and back to the default file after a reset."""

import html
import quopri
import re

import pytest
from sqlalchemy import event, func, select

from harness import csrf_token
from newsletter import digests
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.models import EmailTemplate
from tests.helpers import FEED, add_readers, log_in, wait_until_sent
from tests.smtp import html_of, link_in, text_of

EDITORS_LINE = "Thanks for reading, from the editors."


@pytest.fixture
def feed(runner):
    assert runner.invoke(args=["import-feed", FEED]).exit_code == 0


def textareas(page):
    """The HTML and text sources the edit page shows."""
    found = re.findall(
        r"<textarea[^>]*>(?:\r?\n)?(.*?)</textarea>", page.get_data(as_text=True), re.S
    )
    return [html.unescape(source) for source in found]


def edit(client, name, html_source, text_source, **extra):
    path = f"/admin/email-templates/{name}"
    token = csrf_token(client.get(path))
    return client.post(
        path, data={"csrf_token": token, "html": html_source, "text": text_source, **extra}
    )


def stored_rows(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(EmailTemplate))


def with_editors_line(html_source, text_source):
    html_source = html_source.replace(
        '<p class="footer">', f'<p>{EDITORS_LINE}</p>\n  <p class="footer">'
    )
    return html_source, text_source.replace("--\n", f"{EDITORS_LINE}\n--\n")


def test_an_admin_edits_the_digest_template_and_the_next_digest_carries_it(
    app, admin_client, runner, smtp, worker, feed
):
    admin = admin_client
    listing = admin.get("/admin/email-templates").get_data(as_text=True)
    assert 'href="/admin/email-templates/digest"' in listing
    assert "Edited" not in listing
    default_html, default_text = textareas(admin.get("/admin/email-templates/digest"))
    assert '<a href="{{ unsubscribe_url }}">{{ _("Unsubscribe") }}</a>' in default_html
    html_source, text_source = with_editors_line(default_html, default_text)

    previewed = edit(admin, "digest", html_source, text_source, preview="1")
    assert previewed.status_code == 200
    page = previewed.get_data(as_text=True)
    frame = re.search(r'<iframe[^>]*sandbox=""[^>]*srcdoc="([^"]*)"', page)
    assert EDITORS_LINE in html.unescape(frame[1])
    assert "Council approves new bridge" in html.unescape(frame[1])
    assert EDITORS_LINE in re.search(r"<pre data-preview-text[^>]*>(.*?)</pre>", page, re.S)[1]
    assert stored_rows(app) == 0, "a preview stores nothing"

    saved = edit(admin, "digest", html_source, text_source)
    assert saved.status_code == 302
    assert stored_rows(app) == 2
    assert "Edited" in admin.get("/admin/email-templates").get_data(as_text=True)
    assert textareas(admin.get("/admin/email-templates/digest")) == [html_source, text_source]

    add_readers(app, 2)
    digest_id = int(runner.invoke(args=["send-digest", "--subject", "Bridge week"]).output)
    messages = smtp.wait_for(2)
    assert wait_until_sent(app, digest_id)["sent"] == 2
    for message in messages:
        assert EDITORS_LINE in html_of(message)
        assert EDITORS_LINE in text_of(message)
        unsubscribe = re.search(r"<(http://\S+/unsubscribe/\S+)>", message["List-Unsubscribe"])[1]
        assert unsubscribe in html_of(message)
        assert unsubscribe in text_of(message)

    token = csrf_token(admin.get("/admin/email-templates/digest"))
    reset = admin.post("/admin/email-templates/digest/reset", data={"csrf_token": token})
    assert reset.status_code == 302
    assert stored_rows(app) == 0
    assert textareas(admin.get("/admin/email-templates/digest")) == [default_html, default_text]
    token = csrf_token(admin.get(f"/admin/digests/{digest_id}"))
    admin.post(
        f"/admin/digests/{digest_id}/test", data={"csrf_token": token, "email": "ed@example.org"}
    )
    test_copy = smtp.wait_for(3)[2]
    assert "Council approves new bridge" in text_of(test_copy)
    assert EDITORS_LINE not in html_of(test_copy)
    assert EDITORS_LINE not in text_of(test_copy)


def break_html(change):
    return lambda html_source, text_source: (change(html_source), text_source)


REFUSED = {
    "syntax error": (
        break_html(lambda source: source.replace("{% endfor %}", "{% endfor")),
        "html",
        r"Line 4\d: expected token 'end of statement block'",
    ),
    "Python internals": (
        break_html(lambda source: source.replace("<h1>", "<h1>{{ ''.__class__.__mro__ }}")),
        "html",
        r"Line 4\d: access to attribute '__class__' of 'str' object is unsafe",
    ),
    "an unsafe attribute, printed": (
        lambda html_source, text_source: (html_source, "{{ ''.__class__ }}\n" + text_source),
        "text",
        r"Line 1: access to attribute '__class__' of 'str' object is unsafe",
    ),
    "an undefined attribute": (
        break_html(lambda source: source.replace("{{ post.title }}", "{{ post.headline }}")),
        "html",
        r"Line \d+: 'newsletter.mail.template_data.PostData object' has no attribute 'headline'",
    ),
    "no unsubscribe link in the HTML": (
        break_html(lambda source: source.replace('<a href="{{ unsubscribe_url }}">', "<a>")),
        "html",
        r"The HTML part must keep the link {{ unsubscribe_url }}",
    ),
    "no unsubscribe link in the text": (
        lambda html_source, text_source: (
            html_source,
            text_source.replace("{{ unsubscribe_url }}", ""),
        ),
        "text",
        r"The TEXT part must keep the link {{ unsubscribe_url }}",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
@pytest.mark.parametrize("button", [{}, {"preview": "1"}], ids=["save", "preview"])
def test_a_template_that_cannot_be_sent_is_refused_with_the_reason(app, admin_client, case, button):
    change, part, message = REFUSED[case]
    for name in ("digest", "welcome"):
        defaults = textareas(admin_client.get(f"/admin/email-templates/{name}"))
        html_source, text_source = change(*defaults)
        refused = edit(admin_client, name, html_source, text_source, **button)
        assert refused.status_code == 400
        page = refused.get_data(as_text=True)
        errors = re.findall(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
        assert len(errors) == 1
        assert re.search(message, html.unescape(errors[0])), errors[0]
        # The message sits under the part it is about.
        label = "HTML part" if part == "html" else "Text part"
        assert page.index(label) < page.index('class="error"')
        assert "data-preview-html" not in page
        assert stored_rows(app) == 0


def test_an_edited_confirmation_reaches_the_next_reader_who_signs_up(
    app, admin_client, smtp, worker
):
    admin = admin_client
    default_html, default_text = textareas(admin.get("/admin/email-templates/confirmation"))
    greeting = "Welcome to the family, {{ subscriber.name or 'reader' }}!"

    without_link = default_text.replace("{{ confirm_url }}", "")
    refused = edit(admin, "confirmation", default_html, without_link)
    assert refused.status_code == 400
    assert "The TEXT part must keep the link {{ confirm_url }}" in html.unescape(
        refused.get_data(as_text=True)
    )
    assert stored_rows(app) == 0

    html_source = default_html.replace("<h1", f"<p>{greeting}</p>\n    <h1", 1)
    saved = edit(admin, "confirmation", html_source, greeting + "\n\n" + default_text)
    assert saved.status_code == 302
    assert stored_rows(app) == 2

    visitor = app.test_client()
    visitor.post("/subscribe", data={"email": "ann@example.org", "name": "Ann <b>"})
    [message] = smtp.wait_for(1)
    assert text_of(message).startswith("Welcome to the family, Ann <b>!")
    assert "Welcome to the family, Ann &lt;b&gt;!" in html_of(message), "HTML is escaped"
    path = link_in(message)
    assert path in html_of(message)
    assert b"You're subscribed" in visitor.post(path).data


def test_editing_takes_a_login_and_a_csrf_token(app, admin, client):
    assert client.get("/admin/email-templates").headers["Location"].startswith("/admin/login")
    token = csrf_token(client.get("/admin/login"))
    posted = client.post(
        "/admin/email-templates/digest", data={"csrf_token": token, "html": "x", "text": "y"}
    )
    assert posted.headers["Location"].startswith("/admin/login")
    reset = client.post("/admin/email-templates/digest/reset", data={"csrf_token": token})
    assert reset.headers["Location"].startswith("/admin/login")
    log_in(client)
    default_html, default_text = textareas(client.get("/admin/email-templates/digest"))
    edited = default_text + "\nEdited.\n"
    forged = client.post(
        "/admin/email-templates/digest", data={"html": default_html, "text": edited}
    )
    assert forged.status_code == 400
    assert stored_rows(app) == 0
    assert edit(client, "digest", default_html, edited).status_code == 302
    assert stored_rows(app) == 1, "only the part that differs from the default is kept"
    assert client.post("/admin/email-templates/digest/reset").status_code == 400
    assert stored_rows(app) == 1
    assert client.get("/admin/email-templates/nonsense").status_code == 404


def test_a_digest_reads_each_template_once_and_compiles_it_once_per_version(
    app, admin_client, feed
):
    default_html, default_text = textareas(admin_client.get("/admin/email-templates/digest"))
    edit(admin_client, "digest", *with_editors_line(default_html, default_text))
    queries = []
    with app.app_context():
        digest = digests.create_digest("Not sent here")

        @event.listens_for(db.engine, "before_cursor_execute")
        def count(_connection, _cursor, statement, *_args):
            if "email_template" in statement:
                queries.append(statement)

        first = digest_mail.DigestMessages(digest)
        queries.clear()
        again = digest_mail.DigestMessages(digest)
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(queries) == 1
    assert again.editions == first.editions
    html_pieces = again.editions["en"].html_pieces
    encoded = b"".join(piece for piece in html_pieces if isinstance(piece, bytes))
    assert EDITORS_LINE.encode() in quopri.decodestring(encoded)


@pytest.mark.parametrize("name", ["confirmation", "welcome", "digest"])
def test_the_default_emails_read_well_in_dark_mode_and_to_screen_readers(admin_client, name):
    defaults = textareas(admin_client.get(f"/admin/email-templates/{name}"))
    page = edit(admin_client, name, *defaults, preview="1").get_data(as_text=True)
    # As sent: the digest's CSS inlined, which must keep the dark scheme's @media block.
    email = html.unescape(re.search(r'srcdoc="([^"]*)"', page)[1])
    assert '<html lang="en">' in email
    assert '<meta name="color-scheme" content="light dark">' in email
    assert "@media (prefers-color-scheme: dark)" in email
    tables = re.findall(r"<table[^>]*>", email)
    assert tables
    assert all('role="presentation"' in table for table in tables)
    assert all("alt=" in image for image in re.findall(r"<img[^>]*>", email))
