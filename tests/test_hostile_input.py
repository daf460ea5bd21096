"""Whatever the open internet sends to the sign-up form, the JSON API, the links in our
emails and the admin's CSV import, the service answers without a 5xx, stores nothing
when it refuses, and never lets what it was sent become a mail header.

These are property tests (Hypothesis): each property is tried on a hundred or more
generated inputs, derandomized so that every run, CI's included, tries the same ones.
An input that once broke a property is kept beside it as an ``@example``.
"""

import csv
import io
import itertools
import json
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from harness import csrf_token
from newsletter.core.addresses import clean_name, normalize_email
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.core.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.mail.relay import smtp_address
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers

# Each property reuses the test's app (a fresh database per test, not per example):
# it compares the tables before and after each request instead of starting empty.
REUSES_THE_APP = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
]
HTTP_PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=REUSES_THE_APP,
)
# A real worker sends each example's emails: few examples, each with several sign-ups.
MAIL_PROPERTY = settings(HTTP_PROPERTY, max_examples=20)

# A header that input tries to add to a response or an email.
INJECTED = "X-Injected"
HEADER_BREAKERS = [
    "\r\nBcc: victim@evil.example",
    f"\n{INJECTED}: yes",
    "\rSubject: You won",
    "\r\n\r\n<h1>body</h1>",
]
NASTY_CHARACTERS = [
    "\x00",
    "\r",
    "\n",
    "\t",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",  # line and paragraph separators: str.splitlines() breaks lines there
    "\u2029",
    "\u200b",  # zero-width space, non-joiner, joiner, BOM
    "\u200c",
    "\u200d",
    "\ufeff",
    "\u202e",  # right-to-left override and isolates: text that reads backwards
    "\u2066",
    "\u061c",
    "😀",
    "👩\u200d👩\u200d👧",
    "e\u0301",
    "ß",
    "İ",
    "ﬁ",
    "\ue000",
    "\uffff",
    "\U0010ffff",
    '"',
    "'",
    "<",
    ">",
    "&",
    "\\",
    ",",
    ";",
    ":",
    "@",
    "%0d%0a",
    "=?utf-8?q?",
    "?=",
]
# Lone surrogates: JSON can carry them (as \ud800), UTF-8 and so a form cannot.
SURROGATES = ["\ud800", "\udfff", "\udc80"]


def hostile_text(surrogates=False, max_size=12):
    """Any text, weighted toward what breaks things: control and invisible characters,
    line breaks that try to start a header, emoji, and very long strings."""
    fragments = NASTY_CHARACTERS + HEADER_BREAKERS + (SURROGATES if surrogates else [])
    any_character = st.characters(exclude_categories=()) if surrogates else st.characters()
    return st.one_of(
        st.text(any_character, max_size=max_size * 2),
        st.lists(
            st.one_of(st.sampled_from(fragments), st.text(any_character, max_size=4)),
            max_size=max_size,
        ).map("".join),
        st.builds(
            lambda piece, times: piece * times,
            st.sampled_from(["a", "é", "😀", "\u200b", "a@"]),
            st.integers(200, 20_000),
        ),
    )


LOCAL_PARTS = st.one_of(
    st.sampled_from(
        [
            "ann",
            "Ann.Reader",
            "ann+news",
            "o'brien",
            "a!#$%&'*+/=?^_`{|}~-z",
            '"ann reader"',
            '"a@b"',
            '"\\"q\\""',
            ".ann",
            "ann.",
            "a..b",
            "josé",
            "用户",
            "ΑΘΗΝΑ",
            "x" * 64,
            "x" * 65,
            "",
        ]
    ),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=10),
)
DOMAINS = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.Org",
            "bücher.example",
            "xn--bcher-kva.example",
            "faß.de",
            "例え.jp",
            "xn--zz.example",
            "xn--.example",
            "example.com.",
            ".example.com",
            "example..com",
            "[127.0.0.1]",
            "[IPv6:::1]",
            "[300.1.1.1]",
            "127.0.0.1",
            "localhost",
            "-dash.example",
            "dash-.example",
            "a" * 64 + ".example",
            ("a" * 63 + ".") * 4 + "example",
            "exa mple.com",
            "\u0660.com",
        ]
    ),
    st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8), min_size=2).map(
        ".".join
    ),
)


# Addresses as people type them, in any script, at domains that take mail.
typed_addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(st.characters(categories=["L", "N"], include_characters="._+-"), min_size=1),
    st.sampled_from(["example.com", "EXAMPLE.org", "bücher.example", "faß.de", "例え.jp"]),
)


def email_like(surrogates=False):
    """Strings that look like an address, made of parts that each break something, or
    anything at all."""
    built = st.builds(
        lambda before, local, at, domain, after: f"{before}{local}{at}{domain}{after}",
        st.sampled_from(["", "", " ", "\t", "<", "\u200b", "mailto:"]),
        st.one_of(LOCAL_PARTS, hostile_text(surrogates, max_size=4)),
        st.sampled_from(["@", "@", "@", "@@", "\uff20", ""]),
        DOMAINS,
        st.sampled_from(["", "", " ", ">", ",other@example.com", "\x00", *HEADER_BREAKERS]),
    )
    return st.one_of(typed_addresses, built, hostile_text(surrogates))


def names(surrogates=False):
    return st.one_of(
        st.sampled_from(
            [
                "",
                "Ann",
                "Ann\r\nBcc: victim@evil.example",
                f"Ann\n{INJECTED}: yes",
                "Bcc: victim",
                '"Ann" <Bcc: victim>',
                "Doe, John",
                "=?utf-8?q?Ann=0D=0ABcc:_victim?=",
                "José Müller",
                "محمد علي",
                "\u202eevil",
                "😀" * 30,
                "x" * 101,
                "  Ann   Reader  ",
            ]
        ),
        hostile_text(surrogates),
    )


def stored_rows(app, ignoring=()):
    """Every row of every table (less the ``table.column``s ignored), to compare before
    and after a request."""
    with app.app_context(), db.engine.connect() as connection:
        rows = {}
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.c if f"{table.name}.{c.name}" not in ignoring]
            rows[table.name] = sorted(map(tuple, connection.execute(select(*columns))), key=repr)
        return rows


def assert_no_harm(app, before, answer, ignoring=()):
    """No 5xx, no header made from input, and nothing stored by a refusal."""
    event(f"answered {answer.status_code}")
    assert answer.status_code < 500, answer.get_data(as_text=True)[:500]
    assert INJECTED not in answer.headers
    if 400 <= answer.status_code < 500:
        assert stored_rows(app, ignoring) == before, f"{answer.status_code} but rows changed"


def without_echoed_values(page):
    """A page with the values of its inputs blanked: the check-email page repeats the
    address that was typed, escaped, and is otherwise the same for everyone."""
    return re.sub(rb'value="[^"]*"', b'value=""', page)


@pytest.fixture
def check_email_page(client):
    answer = client.post("/subscribe", data={"email": "plain@example.org"})
    assert b"Now check your email" in answer.data
    return without_echoed_values(answer.data)


# A form's values as a browser sends them, or as raw bytes that are not UTF-8 at all.
form_values = st.one_of(st.text(st.characters(), max_size=30), st.binary(max_size=40))


sign_up_forms = st.fixed_dictionaries(
    {"email": st.one_of(email_like(), form_values), "name": st.one_of(names(), form_values)},
    # An embedded form names itself in "source"; only bots fill in "website".
    optional={"source": form_values, "website": st.sampled_from(["", "http://bot.example"])},
)


@pytest.mark.slow
@HTTP_PROPERTY
@given(fields=sign_up_forms)
@example(fields={"email": "ann@example.org\r\nBcc: victim@evil.example", "name": ""})
@example(fields={"email": "ann@example.org", "name": "Ann\x00"})
@example(fields={"email": b"\xed\xa0\x80@example.org", "name": b"\xff\xfe", "source": b"\x00"})
def test_the_form_answers_anything_with_check_your_email_or_a_reason_and_stores_no_refusal(
    app, client, check_email_page, fields
):
    # A lone surrogate goes out as the bytes it stands for: not UTF-8, as a broken client sends.
    body = urlencode(fields, errors="surrogatepass")
    before = stored_rows(app)

    answer = client.post("/subscribe", data=body, content_type="application/x-www-form-urlencoded")

    assert_no_harm(app, before, answer)
    assert answer.status_code in (200, 400)
    if answer.status_code == 200:
        assert without_echoed_values(answer.data) == check_email_page
    else:
        assert b'class="error"' in answer.data


# Each try at a code counts, right or wrong: the one change a refused try makes.
TRIES = ("subscriber.code_attempts",)
codes = st.one_of(
    st.from_regex(r"[0-9 ]{6,8}", fullmatch=True),
    st.text(st.characters(), max_size=10),
    st.binary(max_size=12),
)


@pytest.fixture
def pending_subscriber(app, client):
    client.post("/subscribe", data={"email": "pending@example.org"})
    with app.app_context():
        return db.session.scalar(
            select(Subscriber).where(Subscriber.email == "pending@example.org")
        )


@pytest.mark.slow
@HTTP_PROPERTY
@given(
    email=st.one_of(
        st.sampled_from(["pending@example.org", " Pending@EXAMPLE.org "]), email_like()
    ),
    code=codes,
)
@example(email="pending@example.org", code="١٢٣٤٥٦")  # Arabic-Indic digits
@example(email="pending@example.org", code="é12345")
def test_the_code_form_answers_any_address_and_code_and_a_wrong_code_only_counts_a_try(
    app, client, pending_subscriber, email, code
):
    # Tries run out after five; each example gets them back, so every one reaches the check.
    with app.app_context():
        db.session.execute(
            update(Subscriber).where(Subscriber.id == pending_subscriber.id).values(code_attempts=0)
        )
        db.session.commit()
    before = stored_rows(app, ignoring=TRIES)

    answer = client.post(
        "/confirm-code",
        data=urlencode({"email": email, "code": code}, errors="surrogatepass"),
        content_type="application/x-www-form-urlencoded",
    )

    assert_no_harm(app, before, answer, ignoring=TRIES)
    assert answer.status_code == 400
    assert b"That code does not work" in answer.data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text(True, max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(hostile_text(True, max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
sign_ups_as_json = st.fixed_dictionaries(
    {"email": email_like(surrogates=True)},
    optional={"name": names(surrogates=True), "website": st.sampled_from(["", "x", 0, None])},
)
# The fields a sign-up names, holding any JSON value at all.
fields_of_any_shape = st.fixed_dictionaries(
    {"email": st.one_of(email_like(surrogates=True), json_values)},
    optional={"name": json_values, "website": json_values},
)
json_bodies = st.one_of(
    sign_ups_as_json.map(json.dumps),
    sign_ups_as_json.map(json.dumps),
    fields_of_any_shape.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=200),
)


@pytest.mark.slow
@HTTP_PROPERTY
@given(
    body=json_bodies,
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json",
            "application/json; charset=utf-8",
            "application/vnd.api+json",
            "text/plain",
            "application/x-www-form-urlencoded",
        ]
    ),
)
@example(body=json.dumps({"email": "ann@example.org", "name": "\ud800"}), content_type=None)
@example(body="[" * 100_000, content_type=None)
@example(body='{"email": 1' + "0" * 5000 + "}", content_type=None)
def test_the_api_answers_any_body_with_202_pending_or_a_json_reason_and_stores_no_refusal(
    app, client, body, content_type
):
    before = stored_rows(app)

    answer = client.post(
        "/api/subscribe", data=body, content_type=content_type or "application/json"
    )

    assert_no_harm(app, before, answer)
    assert answer.status_code in (202, 400, 422)
    if answer.status_code == 202:
        assert answer.json == {"status": "pending"}
    else:
        assert isinstance(answer.json["error"], str)
        assert answer.json["error"]


@pytest.fixture
def genuine_tokens(app):
    """Real links of subscribers in every state, for every purpose: the routes get them
    whole, cut, changed, and for the wrong purpose."""
    made = []
    with app.app_context():
        for status in SubscriberStatus:
            subscriber = Subscriber(
                email=f"{status.value}@example.org", status=status, signup_source="test"
            )
            db.session.add(subscriber)
            db.session.flush()
            made += [
                make_token(purpose, subscriber) for purpose in (CONFIRM, UNSUBSCRIBE, PREFERENCES)
            ]
        db.session.commit()
    return made


def changed(token, position, insert):
    position %= len(token) + 1
    return token[:position] + insert + token[position + 1 :]


def link_tokens(genuine):
    real = st.sampled_from(genuine)
    return st.one_of(
        real,
        st.builds(
            changed,
            real,
            st.integers(0, 200),
            st.sampled_from(["", "A", "_", "-", ".", "..", "%", "\x00", "é", "/", "\ud800"]),
        ),
        real.map(lambda token: token.rpartition(".")[0]),
        real.map(lambda token: token + token),
        hostile_text(surrogates=True),
        st.binary(max_size=80).map(lambda raw: raw.decode("latin-1")),
    )


# What each route takes besides its token, hostile too: the preferences form's name
# and action, the erase form's tick box, RFC 8058's one-click body.
LINK_ROUTES = [
    ("GET", "/confirm/{}"),
    ("HEAD", "/confirm/{}"),
    ("POST", "/confirm/{}"),
    ("POST", "/confirm/{}/renew"),
    ("GET", "/unsubscribe/{}"),
    ("POST", "/unsubscribe/{}"),
    ("GET", "/preferences/{}"),
    ("POST", "/preferences/{}"),
    ("GET", "/preferences/{}/data"),
    ("POST", "/preferences/{}/erase"),
    ("POST", "/preferences/{}/email-data-link"),
]
link_forms = st.fixed_dictionaries(
    {},
    optional={
        "List-Unsubscribe": st.sampled_from(["One-Click", "one-click", ""]),
        "name": names(),
        "action": st.sampled_from(["save", "resubscribe", "", "RESUBSCRIBE"]),
        "confirm": st.sampled_from(["yes", "no", "", "yes\r\n"]),
    },
)


def path_for(pattern, token):
    # Any code point may reach the URL: surrogates go as the bytes UTF-8 would give them.
    return pattern.format(quote(token.encode("utf-8", "surrogatepass"), safe=""))


@pytest.mark.slow
@HTTP_PROPERTY
@given(data=st.data(), route=st.sampled_from(LINK_ROUTES), form=link_forms)
def test_any_token_on_any_link_route_is_answered_and_a_refusal_changes_nothing(
    app, client, genuine_tokens, data, route, form
):
    token = data.draw(link_tokens(genuine_tokens), label="token")
    method, pattern = route
    before = stored_rows(app)

    answer = client.open(path_for(pattern, token), method=method, data=form)

    assert_no_harm(app, before, answer)


@pytest.mark.slow
@HTTP_PROPERTY
@given(token=hostile_text(surrogates=True), form=link_forms)
def test_one_click_unsubscribe_with_a_bad_token_unsubscribes_nobody(
    app, client, genuine_tokens, token, form
):
    before = stored_rows(app)
    answer = client.post(
        path_for("/unsubscribe/{}", token), data={"List-Unsubscribe": "One-Click", **form}
    )
    assert_no_harm(app, before, answer)
    # Refused, or sent elsewhere ("/" in a token makes a path "//" that is redirected):
    # never unsubscribed, whatever the answer.
    assert answer.status_code != 200
    assert stored_rows(app) == before


ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis"]
HEADERS = [
    "email",
    "email,name",
    "Email , Name ",
    "EMAIL;name",
    "name",
    "",
    "e-mail",
    "email,email",
    '"email","name"',
    "\ufeffemail,name",
    "email,,name",
    "email\x00,name",
    '"email,name',
]
cells = st.one_of(email_like(), names(), hostile_text(max_size=6))


def csv_text(header, rows, quoting, newline):
    """A CSV as a spreadsheet or a hand might write it: quoted properly, or just joined."""
    lines = [header]
    for row in rows:
        if quoting is None:
            lines.append(",".join(row))
        else:
            buffer = io.StringIO()
            csv.writer(buffer, quoting=quoting, lineterminator="").writerow(row)
            lines.append(buffer.getvalue())
    return newline.join(lines)


csv_files = st.one_of(
    st.builds(
        lambda text, encoding: text.encode(encoding, errors="replace"),
        st.builds(
            csv_text,
            st.sampled_from(HEADERS),
            st.lists(st.lists(cells, max_size=4), max_size=6),
            st.sampled_from([None, csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
            st.sampled_from(["\n", "\r\n", "\r"]),
        ),
        st.sampled_from(ENCODINGS),
    ),
    st.binary(max_size=2000),
)


@pytest.fixture
def import_form(admin_client):
    return {"csrf_token": csrf_token(admin_client.get("/admin/subscribers/import"))}


@pytest.mark.slow
@HTTP_PROPERTY
@given(
    content=csv_files,
    filename=st.sampled_from(
        ["readers.csv", "readers.txt", "READERS.CSV", "readers.xlsx", "ü.csv"]
    ),
    confirmed=st.booleans(),
)
@example(
    content=b"email,name\n" + b"x" * 200_000 + b"@example.org,Ann\n",
    filename="readers.csv",
    confirmed=False,
)
@example(content=b'email,name\n"ann@example.org,Ann\n', filename="readers.csv", confirmed=False)
@example(content=b"email\nann@example.org\n\xff\xfe\n", filename="readers.csv", confirmed=True)
# PostgreSQL refuses NUL in text: it must never get that far.
@example(
    content=b"email,name\nann@exam\x00ple.org,Ann\nbob@example.org,B\x00b\n",
    filename="r.csv",
    confirmed=False,
)
def test_an_import_of_any_file_reports_or_refuses_and_stores_only_what_a_sign_up_takes(
    app, admin_client, import_form, content, filename, confirmed
):
    before = stored_rows(app)
    form = {**import_form, "file": (io.BytesIO(content), filename)}
    if confirmed:
        form["confirmed"] = "y"

    answer = admin_client.post(
        "/admin/subscribers/import", data=form, content_type="multipart/form-data"
    )

    assert_no_harm(app, before, answer)
    assert answer.status_code in (200, 400)
    if answer.status_code == 400:
        assert b'<p class="error">' in answer.data
        return
    with app.app_context():
        for email, name in db.session.execute(select(Subscriber.email, Subscriber.name)):
            assert normalize_email(email) == email
            assert clean_name(name) == name


# Addresses and names that are taken, each of which might break a header on its way to
# the relay: international addresses (SMTPUTF8), IDNA domains, names with quotes, commas,
# "Bcc:", encoded-word look-alikes, right-to-left scripts and emoji.
NASTY_BUT_ACCEPTED = [
    ("josé@example.com", "José"),
    ("ann+news@bücher.example", "Ann Bcc: victim"),
    ("reader@xn--bcher-kva.example", '"Ann" <Bcc: victim>'),
    ("ré@faß.de", 'Ré "Q" Bcc: x'),
    ("o'brien@example.org", "O'Brien, Ann"),
    ("encoded@example.org", "=?utf-8?q?Ann=0D=0ABcc:_victim?="),
    ("arabic@example.org", "محمد علي"),
    ("用户@例え.jp", "用户 Bcc: victim"),
    ("emoji@example.org", "😀 Reader"),
    ("long@example.org", "x" * 100),
    ("separators@example.org", "Ann\u2028Bcc: victim\u2029Reader\x0bX"),
    ("Mixed.Case@EXAMPLE.ORG", "Ann;Bcc:victim"),
    ("backslash@example.org", 'Ann \\" Reader'),
]
# And ones that are refused, which nothing may be sent for.
NASTY_AND_REFUSED = [
    ("ann@example.org\r\nBcc: victim@evil.example", ""),
    ("crlf-name@example.org", "Ann\r\nBcc: victim@evil.example"),
    ("lf-name@example.org", f"Ann\n{INJECTED}: yes"),
    ("nul-name@example.org", "Ann\x00"),
    ("rtl@example.org", "\u202eevil"),
    ("two@example.org, victim@evil.example", ""),
    ('"quoted"@example.org', ""),
    ("literal@[127.0.0.1]", ""),
]


def assert_one_subscriber_and_no_header_from_input(message, address, name, plain):
    """The message names its one subscriber once in To, and carries exactly the headers a
    plain sign-up's message carries: none made from the input."""
    assert sorted(message.keys()) == sorted(plain.keys())
    assert message.get_all("Bcc") is None
    assert message.get_all("Cc") is None
    assert len(message.get_all("To")) == 1
    [to] = message["To"].addresses
    assert (to.addr_spec, to.display_name) == (address, clean_name(name))


def sign_up_and_receive(app, client, smtp, sign_ups):
    """Sign each (email, name) up by the API and wait for the accepted ones' emails:
    [(address as SMTP carries it, name, message)], each message's envelope checked to
    name that one address."""
    already = len(smtp.received)
    accepted = []
    for email, name in sign_ups:
        answer = client.post("/api/subscribe", json={"email": email, "name": name})
        assert answer.status_code in (202, 422), answer.json
        if answer.status_code == 202:
            with app.app_context():
                accepted.append((smtp_address(normalize_email(email)), name))
    messages = smtp.wait_for(already + len(accepted))[already:]
    # One RCPT per message (the server takes no more), and one message per subscriber.
    assert len(smtp.rcpt_tos) == len(smtp.received)
    by_recipient = dict(zip(smtp.recipients[already:], messages, strict=True))
    assert set(by_recipient) == {address for address, _ in accepted}
    return [(address, name, by_recipient[address]) for address, name in accepted]


@pytest.fixture
def relay_with_smtputf8(smtp, worker, without_welcome_email):
    smtp.smtputf8 = True
    return smtp


@pytest.fixture
def plain_message(app, client, relay_with_smtputf8):
    [(_, _, message)] = sign_up_and_receive(
        app, client, relay_with_smtputf8, [("plain@example.org", "")]
    )
    return message


def test_nasty_addresses_and_names_reach_the_relay_as_one_reader_each(
    app, client, relay_with_smtputf8, plain_message
):
    smtp = relay_with_smtputf8
    received = sign_up_and_receive(app, client, smtp, NASTY_BUT_ACCEPTED + NASTY_AND_REFUSED)

    assert [name for _, name, _ in received] == [name for _, name in NASTY_BUT_ACCEPTED]
    for address, name, message in received:
        assert_one_subscriber_and_no_header_from_input(message, address, name, plain_message)
    assert not any(b"evil.example" in raw or INJECTED.encode() in raw for raw in smtp.raw)


example_numbers = itertools.count()
deliverable_names = st.lists(
    st.one_of(
        st.sampled_from(
            ["Bcc:", "To:", " ", '"', "<", ">", ",", ";", "\\", "=?utf-8?q?", "?=", "é", "😀"]
        ),
        st.text(st.characters(exclude_categories=["Cc", "Cf", "Cs"]), max_size=4),
    ),
    max_size=8,
).map("".join)
deliverable_addresses = st.builds(
    lambda local, domain: f"{local}+{next(example_numbers)}@{domain}",
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=10),
    st.sampled_from(["example.org", "bücher.example", "faß.de", "例え.jp"]),
)


@MAIL_PROPERTY
@given(sign_ups=st.lists(st.tuples(deliverable_addresses, deliverable_names), max_size=4))
def test_any_accepted_sign_up_reaches_the_relay_as_one_reader(
    app, client, relay_with_smtputf8, plain_message, sign_ups
):
    received = sign_up_and_receive(app, client, relay_with_smtputf8, sign_ups)
    event(f"{len(received)} of {len(sign_ups)} accepted")

    for address, name, message in received:
        assert_one_subscriber_and_no_header_from_input(message, address, name, plain_message)


@pytest.fixture
def two_subscribers(app):
    return add_subscribers(app, 2)


@pytest.mark.slow
@HTTP_PROPERTY
@given(query=hostile_text(surrogates=False, max_size=40), status=hostile_text(), place=st.text())
@example(query="\x00", status="", place="1")
@example(query="😀" * 12500, status="", place="")
@example(query="%_\\", status="pending", place="99999999999999999999999")
@example(query="", status="", place="-5")
def test_the_admin_search_answers_any_query_and_place(
    admin_client, two_subscribers, query, status, place
):
    for side in ("after", "before"):
        answer = admin_client.get(
            "/admin/subscribers", query_string={"q": query, "status": status, side: place}
        )
        assert answer.status_code == 200
        assert INJECTED not in answer.headers


def test_an_id_too_large_for_the_database_is_a_missing_page(admin_client):
    too_large = MAX_ROW_ID + 1
    for path in [f"/admin/posts/{too_large}", f"/admin/digests/{too_large}/progress"]:
        assert admin_client.get(path).status_code == 404
    assert admin_client.get(f"/admin/digests/{too_large - 1}").status_code == 404
