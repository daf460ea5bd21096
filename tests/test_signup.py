"""A visitor signs up, gets the confirmation email from a real worker, and confirms."""

import pytest
from sqlalchemy import select

from newsletter.core.tokens import UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import after_one_more_email
from tests.smtp import code_in, html_of, link_in, text_of

# These stories count confirmation emails; the welcome email has its own tests.
pytestmark = pytest.mark.usefixtures("without_welcome_email")


def subscriber(app, email):
    with app.app_context():
        found = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        if found is not None:
            db.session.expunge(found)
        return found


def confirmation_jobs(app):
    with app.app_context():
        return db.session.scalar(select(db.func.count(EmailJob.id)))


def test_reader_signs_up_and_confirms_by_the_link_in_the_email(app, client, smtp, worker):
    page = client.get("/")
    assert b'name="email"' in page.data

    answer = client.post("/subscribe", data={"email": "Reader@Example.org", "name": "Ann Reader"})
    assert answer.status_code == 200
    assert b"Now check your email" in answer.data

    [message] = smtp.wait_for(1)
    assert message["To"] == "Ann Reader <reader@example.org>"
    assert message["Message-ID"].endswith("@localhost>")
    assert "Confirm your subscription" in message["Subject"]
    path = link_in(message)
    assert path.startswith("/confirm/")
    assert path in html_of(message)

    opened = client.get(path)
    assert opened.status_code == 200
    assert b"Confirm subscription" in opened.data
    assert subscriber(app, "reader@example.org").status == SubscriberStatus.PENDING

    confirmed = client.post(path)
    assert confirmed.status_code == 200
    assert b"You're subscribed" in confirmed.data
    ann = subscriber(app, "reader@example.org")
    assert ann.status == SubscriberStatus.CONFIRMED
    assert ann.confirmed_at is not None
    assert (ann.signup_source, ann.signup_ip, ann.confirm_ip) == (
        "form",
        "127.0.0.1",
        "127.0.0.1",
    )

    again = client.post(path)
    assert again.status_code == 200
    assert b"You're subscribed" in again.data


def test_the_confirm_page_has_one_large_button_and_nothing_acts_on_its_own(
    app, client, smtp, worker
):
    client.post("/subscribe", data={"email": "reader@example.org"})
    path = link_in(smtp.wait_for(1)[0])
    page = client.get(path).get_data(as_text=True)
    assert "<script" not in page
    assert '<button type="submit" class="large">Confirm subscription</button>' in page
    assert client.head(path).status_code == 200
    assert subscriber(app, "reader@example.org").status == SubscriberStatus.PENDING


def test_the_code_in_the_email_confirms_on_the_check_email_page(app, client, smtp, worker):
    page = client.post("/subscribe", data={"email": "Coder@Example.org"}).get_data(as_text=True)
    assert 'action="/confirm-code"' in page
    assert 'value="Coder@Example.org"' in page
    code = code_in(smtp.wait_for(1)[0])
    assert code in html_of(smtp.received[0])

    answer = client.post("/confirm-code", data={"email": "coder@example.org", "code": code})
    assert answer.status_code == 200
    assert b"You're subscribed" in answer.data
    confirmed = subscriber(app, "coder@example.org")
    assert confirmed.status == SubscriberStatus.CONFIRMED
    assert confirmed.confirm_ip == "127.0.0.1"


def test_wrong_codes_are_limited_and_tell_nothing_about_the_address(
    make_app, smtp, start_worker_for
):
    app = make_app(CONFIRM_CODE_ATTEMPTS=5)
    start_worker_for(app)
    client = app.test_client()
    client.post("/subscribe", data={"email": "guess@example.org"})
    code = code_in(smtp.wait_for(1)[0])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [
        client.post("/confirm-code", data={"email": "guess@example.org", "code": wrong})
        for _ in range(5)
    ]
    answers.append(client.post("/confirm-code", data={"email": "guess@example.org", "code": code}))
    unknown = client.post("/confirm-code", data={"email": "nobody@example.org", "code": code})
    hostile = client.post("/confirm-code", data={"email": "x\r\nBcc: a@b.c", "code": "<b>"})
    for answer in [*answers, unknown, hostile]:
        assert answer.status_code == 400
        assert b"That code does not work" in answer.data
    assert subscriber(app, "guess@example.org").status == SubscriberStatus.PENDING

    # A new confirmation email brings new tries.
    client.post("/subscribe", data={"email": "guess@example.org"})
    smtp.wait_for(2)
    answer = client.post("/confirm-code", data={"email": "guess@example.org", "code": code})
    assert answer.status_code == 200
    assert subscriber(app, "guess@example.org").status == SubscriberStatus.CONFIRMED


def test_an_address_gets_at_most_confirm_max_per_day_confirmations(
    make_app, smtp, start_worker_for
):
    app = make_app(CONFIRM_MAX_PER_DAY=3, CONFIRM_RESEND_INTERVAL=0)
    start_worker_for(app)
    client = app.test_client()
    for _ in range(10):
        assert client.post("/subscribe", data={"email": "victim@example.org"}).status_code == 200
        smtp.wait_for(1)
    # The third may still be on its way on a busy machine; a fourth would come as soon.
    smtp.wait_for(3)
    received = after_one_more_email(app, smtp)
    assert [m["To"] for m in received] == ["victim@example.org"] * 3


def test_api_signup_answers_202_and_sends_the_confirmation(app, client, smtp, worker):
    answer = client.post("/api/subscribe", json={"email": "api@example.org"})
    assert answer.status_code == 202
    assert answer.json == {"status": "pending"}
    [message] = smtp.wait_for(1)
    assert message["To"] == "api@example.org"
    assert subscriber(app, "api@example.org").signup_source == "api"


def test_an_embedded_form_names_its_source(app, client):
    client.post("/subscribe", data={"email": "a@example.org", "source": "footer-form"})
    client.post("/subscribe", data={"email": "b@example.org", "source": "<script>"})
    assert subscriber(app, "a@example.org").signup_source == "footer-form"
    assert subscriber(app, "b@example.org").signup_source == "form"


def test_the_answer_is_the_same_for_new_pending_and_confirmed_addresses(app, client, smtp, worker):
    first = client.post("/subscribe", data={"email": "reader@example.org"})
    client.post(link_in(smtp.wait_for(1)[0]))
    for_confirmed = client.post("/subscribe", data={"email": "reader@example.org"})
    for_new = client.post("/subscribe", data={"email": "other@example.org"})
    for_pending = client.post("/subscribe", data={"email": "other@example.org"})
    assert first.data == for_confirmed.data
    assert for_new.data == for_pending.data == first.data.replace(b"reader@", b"other@")
    addresses = ("reader@example.org", "x@example.org")
    api = [client.post("/api/subscribe", json={"email": e}) for e in addresses]
    assert [(r.status_code, r.json) for r in api] == [(202, {"status": "pending"})] * 2


def test_pending_address_gets_a_fresh_link_and_confirmed_one_gets_none(app, client, smtp, worker):
    client.post("/subscribe", data={"email": "reader@example.org"})
    first = smtp.wait_for(1)[0]
    client.post("/subscribe", data={"email": "reader@example.org"})
    second = smtp.wait_for(2)[1]
    assert link_in(first).startswith("/confirm/")

    assert b"You're subscribed" in client.post(link_in(second)).data
    client.post("/subscribe", data={"email": "reader@example.org"})
    client.post("/subscribe", data={"email": "later@example.org"})
    messages = smtp.wait_for(3)
    assert messages[2]["To"] == "later@example.org"
    assert len(smtp.messages_to("reader@example.org")) == 2
    assert confirmation_jobs(app) == 3


def test_resends_to_a_pending_address_are_throttled(make_app, smtp, start_worker_for):
    app = make_app(CONFIRM_RESEND_INTERVAL=600)
    start_worker_for(app)
    client = app.test_client()
    for _ in range(5):
        client.post("/subscribe", data={"email": "victim@example.org"})
        smtp.wait_for(1)
    assert len(smtp.received) == 1
    assert confirmation_jobs(app) == 1


def test_a_bad_address_is_explained_on_the_form_and_nothing_is_stored(app, client):
    answer = client.post("/subscribe", data={"email": "not-an-address", "name": "Ann"})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "That email address is not valid" in page
    assert 'value="not-an-address"' in page
    empty = client.post("/subscribe", data={"email": ""})
    assert empty.status_code == 400
    assert b"Please enter your email address" in empty.data
    assert confirmation_jobs(app) == 0


def test_api_errors_are_json_with_a_message(app, client):
    cases = [
        (dict(data="email=a@b.org"), 400, "JSON object"),
        (dict(json=["a@example.org"]), 400, "JSON object"),
        (dict(json={}), 400, '"email" is required'),
        (dict(json={"email": 5}), 400, '"email" is required'),
        (dict(json={"email": "a@example.org", "name": ["x"]}), 400, '"name" must be'),
        (dict(json={"email": "nope"}), 422, "not valid"),
    ]
    for kwargs, status, words in cases:
        answer = client.post("/api/subscribe", **kwargs)
        assert answer.status_code == status, kwargs
        assert words in answer.json["error"], answer.json
    wrong_method = client.get("/api/subscribe")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json
    assert confirmation_jobs(app) == 0


def test_header_breaking_input_never_reaches_a_mail_header(app, client):
    for data in (
        {"email": "a@example.org", "name": "Ann\r\nBcc: victim@example.org"},
        {"email": "a@example.org\r\nBcc: victim@example.org"},
        {"email": "a@example.org", "name": "Ann\x00"},
    ):
        answer = client.post("/subscribe", data=data)
        assert answer.status_code == 400
        assert b'class="error"' in answer.data
    api = client.post("/api/subscribe", json={"email": "a@example.org", "name": "A\nB"})
    assert api.status_code == 422
    assert "single line" in api.json["error"]
    assert confirmation_jobs(app) == 0


def test_addresses_are_unique_after_normalization(make_app, smtp, start_worker_for):
    app = make_app(CONFIRM_RESEND_INTERVAL=600)
    start_worker_for(app)
    client = app.test_client()
    for raw in ("Ann@EXAMPLE.org", "ann@example.org", " ann@Example.Org "):
        client.post("/subscribe", data={"email": raw})
    client.post("/subscribe", data={"email": "leser@Bücher.example"})
    client.post("/subscribe", data={"email": "leser@xn--bcher-kva.example"})
    with app.app_context():
        emails = sorted(db.session.scalars(select(Subscriber.email)))
    assert emails == ["ann@example.org", "leser@bücher.example"]
    messages = smtp.wait_for(2)
    assert {m["To"] for m in messages} == {"ann@example.org", "leser@xn--bcher-kva.example"}


def test_an_unsubscribed_reader_can_sign_up_again(app, client, smtp, worker):
    client.post("/subscribe", data={"email": "reader@example.org"})
    client.post(link_in(smtp.wait_for(1)[0]))
    with app.app_context():
        token = make_token(UNSUBSCRIBE, db.session.scalar(select(Subscriber)))
    client.post(f"/unsubscribe/{token}")
    assert subscriber(app, "reader@example.org").status == SubscriberStatus.UNSUBSCRIBED

    client.post("/subscribe", data={"email": "reader@example.org"})
    assert subscriber(app, "reader@example.org").status == SubscriberStatus.PENDING
    assert "confirm" in text_of(smtp.wait_for(2)[1])


def test_a_bot_that_fills_the_hidden_field_gets_the_same_answer_and_nothing_is_sent(
    app, client, smtp, worker
):
    person = client.post("/subscribe", data={"email": "bot@example.org"})
    bot = client.post("/subscribe", data={"email": "bot@example.org", "website": "http://x"})
    api = client.post("/api/subscribe", json={"email": "api-bot@example.org", "website": "x"})
    assert bot.status_code == 200
    assert bot.data == person.data
    assert (api.status_code, api.json) == (202, {"status": "pending"})
    assert subscriber(app, "api-bot@example.org") is None
    smtp.wait_for(1)
    assert len(after_one_more_email(app, smtp)) == 1


@pytest.mark.parametrize("status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED])
def test_a_bounced_or_complained_address_never_returns_to_pending_by_the_form(
    app, client, smtp, worker, status
):
    with app.app_context():
        db.session.add(Subscriber(email="gone@example.org", status=status, signup_source="test"))
        db.session.commit()
    answer = client.post("/subscribe", data={"email": "gone@example.org"})
    assert b"Now check your email" in answer.data
    client.post("/subscribe", data={"email": "other@example.org"})
    smtp.wait_for(1)
    assert [m["To"] for m in after_one_more_email(app, smtp)] == ["other@example.org"]
    assert subscriber(app, "gone@example.org").status == status


@pytest.mark.parametrize(
    "name", ["WIN $500 http://spam.example", "cheap-pills.com", "visit spam.example/now", "a@b.c"]
)
def test_a_name_holding_a_web_address_is_refused_and_nothing_is_stored(app, client, name):
    form = client.post("/subscribe", data={"email": "victim@example.org", "name": name})
    assert form.status_code == 400
    assert b"leave web and email addresses out of the name" in form.data
    api = client.post("/api/subscribe", json={"email": "victim@example.org", "name": name})
    assert api.status_code == 422
    assert subscriber(app, "victim@example.org") is None


def test_one_victim_signed_up_300_times_from_100_addresses_gets_three_emails(
    make_app, smtp, start_worker_for
):
    """A sign-up bomb: a page posts the form for one victim from many clients."""
    app = make_app(CONFIRM_MAX_PER_DAY=3, CONFIRM_RESEND_INTERVAL=0)
    start_worker_for(app)
    client = app.test_client()
    answers = set()
    for number in range(300):
        ip = f"198.51.100.{number % 100}"
        answer = client.post(
            "/subscribe", data={"email": "victim@example.org"}, environ_base={"REMOTE_ADDR": ip}
        )
        answers.add(answer.status_code)
    smtp.wait_for(3)
    assert answers == {200}
    assert confirmation_jobs(app) == 3
    received = after_one_more_email(app, smtp)
    assert [m["To"] for m in received] == ["victim@example.org"] * 3
