"""Admins see whether receivers will take their mail: SPF, DKIM, DMARC, https links
and the complaint rate, each with what to fix. DNS answers are faked in tests."""

import base64
import html
import re
from datetime import timedelta

import dns.exception
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dns.rdtypes.ANY.TXT import TXT

from newsletter.admins import deliverability
from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending.models import Delivery, EmailJob, EmailKind, JobStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus

SPF = "v=spf1 include:_spf.relay.example -all"
DMARC = "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"
ROW = re.compile(r"<tr><th>([^<]*)</th><td><strong>([^<]*)</strong></td><td[^>]*>([^<]*)</td></tr>")


@pytest.fixture(scope="module")
def keys():
    """Two RSA keys: the one configured, and another one."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def dkim_record(key):
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def good_dns(keys):
    return {
        "example.org": [SPF, "google-site-verification=abc"],
        "news._domainkey.example.org": [dkim_record(keys[0])],
        "_dmarc.example.org": [DMARC],
    }


def fake_resolver(monkeypatch, answers):
    """dnspython answers from ``answers`` (name: TXT records, or an exception to raise);
    a name not there does not exist. Long records are split into 255-byte strings, as
    DNS carries them."""

    def resolve(name, rdtype, lifetime):
        assert rdtype == "TXT"
        assert lifetime == deliverability.LOOKUP_SECONDS
        answer = answers.get(str(name).rstrip("."))
        if answer is None:
            raise dns.resolver.NXDOMAIN
        if isinstance(answer, Exception):
            raise answer
        if not answer:
            raise dns.resolver.NoAnswer
        return [
            TXT(dns.rdataclass.IN, dns.rdatatype.TXT, _strings(record.encode()))
            for record in answer
        ]

    monkeypatch.setattr(dns.resolver, "resolve", resolve)


def _strings(record):
    return [record[start : start + 255] for start in range(0, len(record), 255)]


@pytest.fixture
def configured(app, tmp_path, keys):
    """The app, set up as a careful operator would: own domain, DKIM on, https links."""
    key_path = tmp_path / "dkim.pem"
    key_path.write_bytes(
        keys[0].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    app.config.update(
        MAIL_DEFAULT_SENDER="News <news@example.org>",
        DKIM_SELECTOR="news",
        DKIM_PRIVATE_KEY_PATH=str(key_path),
        BASE_URL="https://news.example.org",
    )
    return app


@pytest.fixture
def report(admin_client, configured, monkeypatch):
    """The page as the admin sees it, for given DNS answers: {check: (status, sentence)}."""

    def show(answers):
        fake_resolver(monkeypatch, answers)
        answer = admin_client.get("/admin/deliverability")
        assert answer.status_code == 200
        rows = ROW.findall(answer.get_data(as_text=True))
        return {name: (status, html.unescape(message)) for name, status, message in rows}

    return show


def mail_sent(app, count):
    with app.app_context():
        subscriber = Subscriber(
            email="reader@example.org", status="confirmed", signup_source="test"
        )
        db.session.add(subscriber)
        db.session.flush()
        db.session.add_all(
            EmailJob(
                kind=EmailKind.WELCOME,
                subscriber_id=subscriber.id,
                status=JobStatus.SENT,
                finished_at=utcnow(),
            )
            for _ in range(count)
        )
        db.session.commit()


def test_the_page_needs_a_login(client, admin):
    answer = client.get("/admin/deliverability")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login")


def test_all_good_is_all_ok(report, configured, admin_client, keys):
    mail_sent(configured, 3)
    checks = report(good_dns(keys))
    assert {name: status for name, (status, _) in checks.items()} == {
        "SPF": "ok",
        "DKIM": "ok",
        "DMARC": "ok",
        "BASE_URL": "ok",
        "Complaints": "ok",
    }
    assert checks["SPF"][1] == (
        f"SPF at example.org: {SPF}. It ends with -all: mail from servers it does not list fails."
    )
    assert checks["DKIM"][1] == (
        "The key at news._domainkey.example.org matches DKIM_PRIVATE_KEY_PATH."
    )
    assert "Policy p=reject, reports to mailto:dmarc@example.org." in checks["DMARC"][1]
    assert "0.00% (complaints: 0; messages sent: 3)" in checks["Complaints"][1]
    assert 'href="/admin/deliverability">Deliverability</a>' in admin_client.get("/admin/").text


def test_two_spf_records_are_an_error(report, keys):
    answers = good_dns(keys) | {"example.org": [SPF, "v=spf1 include:other.example ~all"]}
    status, sentence = report(answers)["SPF"]
    assert status == "error"
    assert sentence == (
        "example.org has 2 SPF records, and receivers fail SPF for a domain with more than "
        "one (RFC 7208). Merge them into one TXT record."
    )


def test_plus_all_lets_anybody_send_and_is_an_error(report, keys):
    status, sentence = report(good_dns(keys) | {"example.org": ["v=spf1 a mx +all"]})["SPF"]
    assert status == "error"
    assert "lets every server in the world send mail as example.org. Replace +all with -all." in (
        sentence
    )


def test_spf_endings_in_plain_words(report, keys):
    softfail = report(good_dns(keys) | {"example.org": ["v=spf1 mx ~all"]})["SPF"]
    assert softfail[0] == "ok"
    assert "marked suspicious (softfail); -all is stricter" in softfail[1]
    neutral = report(good_dns(keys) | {"example.org": ["v=spf1 mx ?all"]})["SPF"]
    assert neutral == ("warning", neutral[1])
    assert "End it with -all (or ~all)." in neutral[1]
    redirect = report(good_dns(keys) | {"example.org": ["v=spf1 redirect=_spf.example.net"]})
    assert redirect["SPF"][0] == "ok"
    assert (
        "hands over to _spf.example.net (redirect=), whose ending is not checked"
        in (redirect["SPF"][1])
    )
    missing = report(good_dns(keys) | {"example.org": ["some-other=record"]})["SPF"]
    assert missing == (
        "error",
        "example.org has no SPF record. Add a TXT record at example.org: v=spf1 include:… -all "
        "(the include: your mail relay's documentation gives).",
    )


def test_a_dkim_key_in_dns_that_is_not_ours_is_an_error(report, keys):
    answers = good_dns(keys) | {"news._domainkey.example.org": [dkim_record(keys[1])]}
    status, sentence = report(answers)["DKIM"]
    assert status == "error"
    assert sentence.startswith(
        "The key at news._domainkey.example.org does not match (DNS has a different key), "
        "so receivers fail every signature."
    )


def test_dkim_without_a_record_or_turned_off(report, configured, keys):
    answers = good_dns(keys)
    del answers["news._domainkey.example.org"]
    status, sentence = report(answers)["DKIM"]
    assert status == "error"
    assert sentence.startswith("DKIM: no record at news._domainkey.example.org.")
    configured.config["DKIM_SELECTOR"] = None
    status, sentence = report(good_dns(keys))["DKIM"]
    assert status == "not checked"
    assert "DKIM signing is off (set DKIM_SELECTOR and DKIM_PRIVATE_KEY_PATH)." in sentence


def test_no_dmarc_record_is_an_error_that_names_gmail_and_yahoo(report, keys):
    answers = good_dns(keys)
    del answers["_dmarc.example.org"]
    status, sentence = report(answers)["DMARC"]
    assert status == "error"
    assert sentence == (
        "No DMARC record at _dmarc.example.org: Gmail and Yahoo require a DMARC record of bulk "
        "senders. Add a TXT record at _dmarc.example.org: "
        "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org"
    )


def test_a_subdomain_sender_is_covered_by_its_organizations_dmarc(report, configured, keys):
    configured.config["MAIL_DEFAULT_SENDER"] = "news@mail.example.org"
    configured.config["DKIM_SELECTOR"] = None
    answers = {"_dmarc.example.org": [DMARC + "; sp=quarantine"]}
    status, sentence = report(answers)["DMARC"]
    assert status == "ok"
    assert "Policy p=quarantine" in sentence


def test_dmarc_without_reports_is_a_warning(report, keys):
    answers = good_dns(keys) | {"_dmarc.example.org": ["v=DMARC1; p=none"]}
    status, sentence = report(answers)["DMARC"]
    assert status == "warning"
    assert "Policy p=none, but no rua= is set" in sentence


def test_dns_that_does_not_answer_is_reported_not_a_500(report, keys):
    answers = good_dns(keys) | {
        "example.org": dns.exception.Timeout(),
        "_dmarc.example.org": dns.resolver.NoNameservers(),
    }
    checks = report(answers)
    assert checks["SPF"] == (
        "not checked",
        "SPF could not be checked: DNS did not answer for example.org within 3 s. "
        "Reload the page to try again.",
    )
    assert checks["DMARC"][0] == "not checked"
    assert checks["DMARC"][1].startswith("DMARC could not be checked: DNS could not answer")
    assert checks["DKIM"][0] == "ok"


def test_a_sender_domain_that_does_not_exist(report):
    checks = report({})
    assert checks["SPF"] == (
        "error",
        "example.org, the domain of MAIL_DEFAULT_SENDER, does not exist in DNS. "
        "Send from an address at a domain you own.",
    )
    assert checks["DKIM"][0] == checks["DMARC"][0] == "error"


def test_http_links_are_a_warning(report, configured, keys):
    configured.config["BASE_URL"] = "http://news.example.org"
    status, sentence = report(good_dns(keys))["BASE_URL"]
    assert status == "warning"
    assert sentence.startswith("BASE_URL is http://news.example.org, not https")
    assert "one-click unsubscribe link (RFC 8058) to be https" in sentence


@pytest.mark.parametrize(
    ("complaints", "status", "shown"),
    [
        (0, "ok", "0.00%"),
        (2, "warning", "0.20% (complaints: 2; messages sent: 1,000)"),
        (4, "error", "0.40% (complaints: 4; messages sent: 1,000)"),
    ],
)
def test_complaint_rate_against_gmails_lines(report, keys, monkeypatch, complaints, status, shown):
    monkeypatch.setattr(deliverability, "complaint_rate", lambda days: (complaints, 1000))
    checks = report(good_dns(keys))
    assert checks["Complaints"][0] == status
    assert shown in checks["Complaints"][1]
    if status == "error":
        assert "at or above Gmail's 0.3% line" in checks["Complaints"][1]


def test_no_mail_sent_means_no_complaint_rate(report, keys):
    assert report(good_dns(keys))["Complaints"] == (
        "not checked",
        "No mail sent in 30 days, so there is no complaint rate yet.",
    )


def test_complaint_rate_counts_the_last_30_days_of_mail(app):
    now = utcnow()
    long_ago = now - timedelta(days=40)
    with app.app_context():
        subscribers = [
            Subscriber(email=f"r{n}@example.org", status=status, signup_source="test")
            for n, status in enumerate(["confirmed", "confirmed", SubscriberStatus.COMPLAINED])
        ]
        recent = Digest(subject="Recent", status=DigestStatus.SENT, finished_at=now)
        folded = Digest(subject="Folded", status=DigestStatus.SENT, finished_at=now, sent_count=5)
        folded.folded_at = now
        old_folded = Digest(
            subject="Old", status=DigestStatus.SENT, finished_at=long_ago, sent_count=7
        )
        old_folded.folded_at = long_ago
        db.session.add_all([*subscribers, recent, folded, old_folded])
        db.session.flush()
        db.session.add_all(
            [
                Delivery(digest_id=recent.id, subscriber_id=subscribers[0].id, sent_at=now),
                Delivery(digest_id=recent.id, subscriber_id=subscribers[1].id, sent_at=long_ago),
                Delivery(digest_id=recent.id, subscriber_id=subscribers[2].id),
                EmailJob(
                    kind=EmailKind.WELCOME,
                    subscriber_id=subscribers[0].id,
                    status=JobStatus.SENT,
                    finished_at=now,
                ),
                EmailJob(
                    kind=EmailKind.WELCOME,
                    subscriber_id=subscribers[1].id,
                    status=JobStatus.SENT,
                    finished_at=long_ago,
                ),
                EmailJob(kind=EmailKind.CONFIRMATION, subscriber_id=subscribers[2].id),
            ]
        )
        db.session.add_all(
            [
                FeedbackEvent(kind=FeedbackKind.COMPLAINT, source="arf", at=now),
                FeedbackEvent(kind=FeedbackKind.COMPLAINT, source="arf", at=long_ago),
                FeedbackEvent(kind=FeedbackKind.HARD_BOUNCE, source="dsn", at=now),
            ]
        )
        db.session.commit()
        # One complaint in the window; one digest copy and one email, and the folded
        # digest's 5.
        assert deliverability.complaint_rate(30) == (1, 7)
