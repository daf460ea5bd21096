"""The relay is trusted only when its certificate and name check out.

Each story runs a real worker against a real relay (aiosmtpd) on 127.0.0.1 that
speaks TLS with a certificate from a CA of the test's own making, the way a private
relay would, and asks for a login. Without that CA the worker neither logs in nor
sends: the email waits, the worker warns, and /healthz says why."""

import datetime
import ipaddress
import logging
import re
import ssl

import pytest
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from newsletter.content import digests, posts
from newsletter.content.models import Digest, DigestStatus
from newsletter.extensions import db
from newsletter.mail import relay_trust
from newsletter.sending.models import Delivery, DeliveryStatus, EmailJob, JobStatus
from tests.helpers import ADMIN, add_subscribers, digest_state, log_in, wait_until
from tests.smtp import SMTPServer
from workers.tasks import start_digest

USER, PASSWORD = "news", "relay password"
SUBSCRIBER = "patient@example.org"


class CertificateAuthority:
    """A CA, written as the PEM file an operator would point MAIL_TLS_CA_FILE at,
    which issues server certificates."""

    def __init__(self, folder):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test relay CA")])
        self.certificate = self._signed(
            self.name, self.key.public_key(), x509.BasicConstraints(ca=True, path_length=0)
        )
        self.pem = folder / "ca.pem"
        self.pem.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def server_context(self, common_name, *alternative_names):
        """A server's TLS context with a certificate for these names, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._signed(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            key.public_key(),
            x509.SubjectAlternativeName(list(alternative_names)),
        )
        chain = self.folder / f"{common_name}.pem"
        chain.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + certificate.public_bytes(serialization.Encoding.PEM)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context

    def _signed(self, subject, public_key, extension):
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
            .sign(self.key, hashes.SHA256())
        )


class Logins:
    """The relay's authenticator: every AUTH that reached it, and whether it was ours."""

    def __init__(self):
        self.attempts = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.attempts.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(
            success=(auth_data.login, auth_data.password) == (b"news", b"relay password")
        )


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


def start_relay(request, context, implicit_tls=False):
    logins = Logins()
    server = SMTPServer(authenticator=logins, tls=context, implicit_tls=implicit_tls)
    server.start()
    request.addfinalizer(server.stop)
    return server, logins


@pytest.fixture
def relay(request, authority):
    """A relay whose certificate names 127.0.0.1 and localhost, as MAIL_SERVER does;
    STARTTLS or implicit TLS, as the test is parametrized."""
    context = authority.server_context(
        "relay.test",
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    )
    implicit = getattr(request, "param", "starttls") == "implicit"
    server, logins = start_relay(request, context, implicit_tls=implicit)
    return server, logins, {"MAIL_USE_SSL": True} if implicit else {"MAIL_USE_TLS": True}


def relay_app(make_app, server, tls, **settings):
    return make_app(
        MAIL_PORT=server.port, MAIL_USERNAME=USER, MAIL_PASSWORD=PASSWORD, **tls, **settings
    )


def the_job(app):
    with app.app_context():
        job = db.session.scalars(select(EmailJob)).one()
        return job.status, job.last_error or ""


def refused_and_waiting(app, server, logins, caplog, reason, host="127.0.0.1"):
    """What a relay we cannot trust leaves behind: the email waits, nothing reached
    the relay (not even the password), the worker warned, /healthz says why."""
    wait_until(lambda: reason in the_job(app)[1], timeout=30)
    assert the_job(app)[0] == JobStatus.QUEUED
    assert server.handler.received == []
    assert logins.attempts == []
    relay = f"{host}:{server.port}"
    warnings = [
        r
        for r in caplog.records
        if "the relay is unavailable" in r.getMessage() and reason in r.getMessage()
    ]
    assert warnings
    assert warnings[0].levelno == logging.WARNING
    assert f"relay {relay}: " in warnings[0].getMessage()
    health = app.test_client().get("/healthz")
    assert health.status_code == 503
    assert health.json["relay"].startswith(f"error: relay {relay}: ")
    assert reason in health.json["relay"]


@pytest.mark.parametrize("relay", ["starttls", "implicit"], indirect=True)
def test_a_relay_whose_certificate_no_known_ca_signed_gets_neither_password_nor_mail(
    make_app, relay, start_worker_for, caplog
):
    server, logins, tls = relay
    app = relay_app(make_app, server, tls)
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": SUBSCRIBER})
    refused_and_waiting(
        app, server, logins, caplog, "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED]"
    )


@pytest.mark.parametrize("relay", ["starttls", "implicit"], indirect=True)
def test_with_its_ca_in_mail_tls_ca_file_the_relay_gets_the_login_and_the_mail(
    make_app, relay, authority, start_worker_for
):
    server, logins, tls = relay
    app = relay_app(make_app, server, tls, MAIL_TLS_CA_FILE=str(authority.pem))
    with app.app_context():
        # As the worker left it before the operator gave it the CA.
        relay_trust.record_failure(f"127.0.0.1:{server.port}", "certificate verify failed")
    assert app.test_client().get("/healthz").status_code == 503
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": SUBSCRIBER})
    [confirmation] = server.handler.wait_for(1)
    assert confirmation["To"] == SUBSCRIBER
    assert logins.attempts == [(USER, PASSWORD)]
    wait_until(lambda: the_job(app)[0] == JobStatus.SENT)
    health = app.test_client().get("/healthz")
    assert (health.status_code, health.json["relay"]) == (200, "ok")


def test_a_certificate_for_another_name_is_refused_even_from_the_trusted_ca(
    make_app, request, authority, start_worker_for, caplog
):
    """Somebody on the path with a certificate our own CA issued to another host."""
    context = authority.server_context("evil.invalid", x509.DNSName("evil.invalid"))
    server, logins = start_relay(request, context)
    app = relay_app(make_app, server, {"MAIL_USE_TLS": True}, MAIL_TLS_CA_FILE=str(authority.pem))
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": SUBSCRIBER})
    refused_and_waiting(app, server, logins, caplog, "not valid for '127.0.0.1'")


def test_a_relay_without_tls_on_another_address_never_gets_the_password(
    make_app, request, start_worker_for, caplog
):
    """0.0.0.0 is not a loopback address, yet Linux connects it to this machine: were
    the password sent, this plaintext relay would record it, and nothing leaves."""
    server, logins = start_relay(request, context=None)
    app = relay_app(make_app, server, {}, MAIL_SERVER="0.0.0.0")
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": SUBSCRIBER})
    refused_and_waiting(
        app, server, logins, caplog, "refusing to send MAIL_PASSWORD", host="0.0.0.0"
    )


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1", "localhost", "LocalHost."],
)
def test_a_password_may_go_unencrypted_only_to_this_machine(host):
    relay_trust.check_password_may_go(host, encrypted=False)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.25",
        "192.0.2.1",
        "2001:db8::25",
        "smtp.example.org",
        "localhost.example.org",
        "127.0.0.1.example.org",
    ],
)
def test_a_password_never_goes_unencrypted_to_another_machine(host):
    with pytest.raises(relay_trust.PasswordRefused, match="MAIL_USE_TLS or MAIL_USE_SSL"):
        relay_trust.check_password_may_go(host, encrypted=False)
    relay_trust.check_password_may_go(host, encrypted=True)


def test_the_relay_context_checks_certificate_and_name_and_refuses_old_tls(app):
    with app.app_context():
        context = relay_trust.tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def waits_for_the_relay(app, digest_id):
    """Whether the confirmation and every copy of the digest are still owed, with
    their attempts given back (at most the one of a claim in flight), and none failed."""
    with app.app_context():
        job = db.session.execute(select(EmailJob.status, EmailJob.attempts)).one()
        copies = db.session.execute(
            select(Delivery.status, Delivery.attempts).where(Delivery.digest_id == digest_id)
        ).all()
        digest = db.session.execute(
            select(Digest.status, Digest.paused_reason).where(Digest.id == digest_id)
        ).one()
    assert job.status == JobStatus.QUEUED
    assert len(copies) == 3
    assert {copy.status for copy in copies} == {DeliveryStatus.PENDING}
    assert all(row.attempts <= 1 for row in [job, *copies])
    assert digest.status == DigestStatus.SENDING
    return digest.paused_reason or ""


def test_the_mail_waits_for_a_relay_it_cannot_trust_for_as_long_as_it_takes(
    make_app, relay, authority, start_worker_for, caplog
):
    """A confirmation and a digest are owed while the relay's certificate is refused:
    every claim gives its attempt back, well past SEND_MAX_ATTEMPTS claims, and each
    batch leaves one WARNING, not one per email. Once the operator gives the app the
    relay's CA, every email arrives exactly once."""
    server, logins, tls = relay
    app = relay_app(
        make_app,
        server,
        tls,
        SEND_MAX_ATTEMPTS=2,
        SEND_RETRY_BASE_SECONDS=0.2,
        SEND_RELAY_WAIT_MAX_SECONDS=0.4,
    )
    subscribers = add_subscribers(app, 3)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]]).exit_code == 0
    admin = app.test_client()
    log_in(admin)
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": SUBSCRIBER})
    with app.app_context():
        posts.save_post(None, "Patience", "https://news.example/patience", "")
        digest_id = digests.create_digest("While the relay is out").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)

    def warnings_for(label):
        return [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith(f"{label}: the relay is unavailable")
        ]

    # Three claims of each row, one more than SEND_MAX_ATTEMPTS allows.
    wait_until(
        lambda: len(warnings_for("email")) >= 3 and len(warnings_for(f"digest {digest_id}")) >= 3,
        timeout=60,
    )
    note = waits_for_the_relay(app, digest_id)
    assert note.startswith("Waiting for the relay, next try at ")
    assert "CERTIFICATE_VERIFY_FAILED" in note
    page = admin.get(f"/admin/digests/{digest_id}").get_data(as_text=True)
    assert "Waiting for the relay, next try at " in page
    assert all(" 3 emails wait " in line for line in warnings_for(f"digest {digest_id}"))
    # The waits grow as openings keep failing, up to SEND_RELAY_WAIT_MAX_SECONDS.
    waits = [
        float(re.search(r" wait ([\d.]+) s: ", line)[1])
        for line in warnings_for("email") + warnings_for(f"digest {digest_id}")
    ]
    assert max(waits) <= 0.4
    assert not [r for r in caplog.records if re.search(r": message \d+ failed", r.getMessage())]
    assert server.handler.received == []
    assert logins.attempts == []
    assert app.test_client().get("/healthz").status_code == 503

    app.config["MAIL_TLS_CA_FILE"] = str(authority.pem)
    received = server.handler.wait_for(4, timeout=30)
    wait_until(lambda: digest_state(app, digest_id)[0] == DigestStatus.SENT)
    wait_until(lambda: the_job(app)[0] == JobStatus.SENT)
    assert sorted(message["To"] for message in server.handler.received) == sorted(
        [SUBSCRIBER, *subscribers]
    )
    assert len(received) == 4
    assert digest_state(app, digest_id)[1]["sent"] == 3
    assert set(logins.attempts) == {(USER, PASSWORD)}
    assert "Waiting for the relay" not in admin.get(f"/admin/digests/{digest_id}").get_data(
        as_text=True
    )
    assert app.test_client().get("/healthz").status_code == 200
