"""Admins edit the confirmation, data-link, welcome and digest emails in the browser: checked in
Jinja's sandbox with sample data before anything is kept, sent by real workers once
saved, and back to the default file after a reset."""

import html
import quopri
import re

import pytest
from sqlalchemy import event, func, select, text

from harness import csrf_token
from newsletter.admins.models import Admin
from newsletter.content import digests, email_templates
from newsletter.content.models import EmailTemplate
from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.mail import transactional
from newsletter.subscribers.models import Subscriber, SubscriberSnapshot
from newsletter.webhooks.models import WebhookEndpoint
from tests.helpers import add_subscribers, log_in, wait_until_sent
from tests.smtp import html_of, link_in, text_of

EDITORS_LINE = "Thanks for reading, from the editors."


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

    add_subscribers(app, 2)
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


@pytest.mark.parametrize("name", ["confirmation", "data_link", "welcome", "digest"])
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


# What an admin might write to reach past a template's variables: the sample-passing
# database read the sandbox let through, Python's internals, the app's objects, and
# renders that would exhaust the machine.
ESCAPES = [
    "{% if digest.query is defined %}{{ digest.query.session.connection().exec_driver_sql("
    "'select email, password_hash, totp_secret from admin').all() }}{% endif %}",
    "{% for post in posts %}{% if post.query is defined %}"
    "{{ post.query.session.execute('select secret from webhook_endpoint').all() }}"
    "{% endif %}{% endfor %}",
    "{% if subscriber is defined and subscriber.query is defined %}"
    "{{ subscriber.query.all() }}{% endif %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ _.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% if cycler is defined %}{{ cycler.__init__.__globals__ }}{% endif %}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ config }}",
    "{% if config is defined %}{{ config.SQLALCHEMY_DATABASE_URI }}{% endif %}",
    "{% if request is defined %}{{ request.environ }}{% endif %}",
    "{{ url_for.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{{ range(10**9)|list|length }}",
    "{{ ('a' * 10**9)|length }}",
    "{{ 10**10**10 }}",
    "{{ 'x'|center(10**9)|length }}",
    "{{ [1]|batch(10**9, 'x')|list|length }}",
    "{{ _('%(n)999999999d', n=1)|length }}",
    "{{ '%999999999d'|format(1)|length }}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{{ (digest|attr('__class__')).__init__ }}",
    "{% if (digest|attr('query')) is defined %}{{ digest|attr('query') }}{% endif %}",
    "{{ '{0.__class__.__init__.__globals__}'.format(digest) }}",
    "{{ '%s'|format(digest) }}",
    "{{ digest|pprint }}",
]


def secrets_of(app):
    """What no email or page may show: the admins' rows, the webhooks' secrets, the key
    and where the database is."""
    with app.app_context():
        admin = db.session.execute(text("SELECT email, password_hash, totp_secret FROM admin"))
        [(email, password_hash, sealed_totp)] = admin.all()
        sealed_webhook = db.session.scalar(text("SELECT secret FROM webhook_endpoint"))
        db.session.rollback()
    return [
        email,
        password_hash,
        sealed_totp,
        TOTP_SECRET,
        sealed_webhook,
        WEBHOOK_SECRET,
        app.config["SECRET_KEY"],
        app.config["SQLALCHEMY_DATABASE_URI"],
        "password_hash",
        "<Config",
        "<Flask",
    ]


TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WEBHOOK_SECRET = "whsec_bm90LWZvci10ZW1wbGF0ZXMtdG8tc2Vl"


def with_escapes(source, escapes):
    """The source with the escapes written in before its end (the text part's end)."""
    block = "\n".join(escapes)
    return (
        source.replace("</body>", block + "\n</body>")
        if "</body>" in source
        else (source + "\n" + block)
    )


def test_no_template_reaches_past_its_variables_on_any_page_or_email(
    app, admin_client, runner, smtp, worker, feed
):
    with app.app_context():
        admin = db.session.scalar(select(Admin))
        admin.totp_secret = TOTP_SECRET
        db.session.add(
            WebhookEndpoint(
                url="https://hooks.example/", events="digest.sent", secret=WEBHOOK_SECRET
            )
        )
        db.session.commit()
    taken = {}
    for name in email_templates.KINDS:
        defaults = textareas(admin_client.get(f"/admin/email-templates/{name}"))
        taken[name] = []
        for escape in ESCAPES:
            answer = edit(admin_client, name, *(with_escapes(s, [escape]) for s in defaults))
            if answer.status_code == 302:
                taken[name].append(escape)
                continue
            assert answer.status_code == 400, (name, escape)
            [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', answer.text, re.S)
            assert error.strip(), (name, escape)
        # As before, a guarded database read passes the check: it must find nothing to read.
        assert any(".query" in escape for escape in taken[name])
        combined = [with_escapes(s, taken[name]) for s in defaults]
        assert edit(admin_client, name, *combined).status_code == 302

    add_subscribers(app, 1)
    with app.app_context():
        draft_id = digests.create_digest("Not sent yet").id
    digest_id = int(runner.invoke(args=["send-digest", "--subject", "Bridge week"]).output)
    assert wait_until_sent(app, digest_id)["sent"] == 1
    visitor = app.test_client()
    visitor.post("/subscribe", data={"email": "ann@example.org", "name": "Ann"})
    confirmation = smtp.wait_for(2)[1]
    visitor.post(link_in(confirmation))
    smtp.wait_for(3)
    # Ann asks for a link to her data from a page that cannot open it.
    with app.app_context():
        ann = db.session.scalar(select(Subscriber).where(Subscriber.email == "ann@example.org"))
        minted = f"/preferences/{tokens.make_token(tokens.PREFERENCES_FROM_UNSUBSCRIBE, ann)}"
    page = visitor.get(minted)
    visitor.post(f"{minted}/email-data-link", data={"csrf_token": csrf_token(page)})
    emails = smtp.wait_for(4)
    assert "Your link to your data" in emails[3]["Subject"]
    shown = [
        visitor.get(f"/archive/{digest_id}", follow_redirects=True).text,
        admin_client.get(f"/admin/digests/{digest_id}").text,
        admin_client.get(f"/admin/digests/{draft_id}").text,
        *(html_of(email) + text_of(email) for email in emails),
    ]
    assert "Council approves new bridge" in shown[0]
    for secret in secrets_of(app):
        for output in shown:
            assert secret not in output
            assert html.escape(secret) not in output


def shapes(context):
    """Each variable's type, and the types inside the digest and its posts."""
    found = {name: type(value) for name, value in context.items()}
    for name in ("digest", "subscriber"):
        if name in context:
            found |= {f"{name}.{field}": type(value) for field, value in vars_of(context[name])}
    for post in context.get("posts", ()):
        found |= {f"post.{field}": type(value) for field, value in vars_of(post)}
    return found


def vars_of(data):
    return [(field, getattr(data, field)) for field in data.__dataclass_fields__]


def test_the_sample_a_template_is_checked_with_has_the_shapes_it_is_sent_with(app, feed):
    """A template that passes the check meets the same types when it is sent: what the
    check took for undefined (``digest.query``) is undefined for real too."""
    with app.app_context():
        digest = digests.create_digest("Bridge week", "An *intro*.")
        links = {"unsubscribe_url": "u", "preferences_url": "p", "archive_url": "a"}
        sent = digest_mail.context(digest, links)
        welcome_issue = transactional.WelcomeIssue("Welcome", "Hello.", digest.posts)
        welcome = digest_mail.context(welcome_issue, links)
        sample = email_templates.sample("digest")[0]
        assert shapes(sample) == shapes(sent) == shapes(welcome)
        subscriber = SubscriberSnapshot(
            7, "ann@example.org", "Ann", "nonce", "pending", locale="de"
        )
        confirmation = transactional.confirmation_context(subscriber)
        assert shapes(email_templates.sample("confirmation")[0]) == shapes(confirmation)
        data_link = transactional.data_link_context(subscriber)
        assert shapes(email_templates.sample("data_link")[0]) == shapes(data_link)
        assert not any(isinstance(value, db.Model) for value in sent.values())
