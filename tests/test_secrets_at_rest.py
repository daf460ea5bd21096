"""Secrets the service must read back, the admins' TOTP seeds and the webhooks' signing
secrets, are sealed in the database under a key derived from SECRET_KEY: whoever
copies the tables cannot log in as an admin or sign as us, and rotating the key
(SECRET_KEY="new,old") keeps both working."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from newsletter import secret_box
from newsletter.extensions import db
from newsletter.subscribers import lifecycle
from tests.helpers import log_in
from tests.helpers.two_factor import code_at, enter_code, turn_on
from tests.helpers.webhooks import a_pending_subscriber, add_endpoint

LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def app(make_app):
    # The webhook receiver runs on this machine, which the operator admits here.
    return make_app(WEBHOOK_ALLOWED_NETWORKS=LOOPBACK)


def stored(app, sql):
    with app.app_context():
        value = db.session.scalar(text(sql))
        db.session.rollback()
        return value


def test_a_totp_secret_is_stored_sealed_and_two_factor_login_still_works_after_rotation(
    make_app, admin, admin_client, clock
):
    secret, _codes = turn_on(admin_client, clock)
    row = stored(admin_client.application, "SELECT totp_secret FROM admin")
    assert secret not in row
    assert row.startswith("gAAAAA"), "a Fernet token"

    rotated = make_app(SECRET_KEY="a-new-key,test-secret")
    browser = rotated.test_client()
    assert log_in(browser).headers["Location"].startswith("/admin/login/two-factor")
    clock.now += 30
    assert enter_code(browser, code_at(secret, clock)).status_code == 302
    assert browser.get("/admin/").status_code == 200

    without_the_old_key = make_app(SECRET_KEY="a-new-key")
    with without_the_old_key.app_context(), pytest.raises(secret_box.CannotOpen):
        secret_box.open_sealed(row, secret_box.TOTP)


def test_a_webhook_secret_is_stored_sealed_and_deliveries_are_signed_after_rotation(
    make_app, admin_client, start_worker_for, receiver
):
    created = add_endpoint(admin_client, receiver, ["subscriber.confirmed"])
    row = stored(admin_client.application, "SELECT secret FROM webhook_endpoint")
    assert created["secret"] not in row
    assert "whsec_" not in row

    rotated = make_app(
        SECRET_KEY="a-new-key,test-secret",
        WEBHOOK_RETRY_BASE_SECONDS=0.2,
        WEBHOOK_MAX_ATTEMPTS=3,
        WEBHOOK_ALLOWED_NETWORKS=LOOPBACK,
    )
    start_worker_for(rotated)
    _subscriber_id, token = a_pending_subscriber(rotated)
    with rotated.app_context():
        lifecycle.confirm(token)
    [(event, _headers)] = receiver.wait_for(1)
    assert event["type"] == "subscriber.confirmed"
    assert receiver.forged == []


def test_the_migration_seals_the_secrets_already_stored_and_its_downgrade_opens_them(
    unmigrated_app,
):
    with unmigrated_app.app_context():
        upgrade(revision="0031")
        db.session.execute(
            text(
                "INSERT INTO admin (email, password_hash, created_at, session_token,"
                " totp_secret, role) VALUES ('a@example.org', 'x', '2026-12-01', 't',"
                " 'JBSWY3DPEHPK3PXP', 'owner')"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO webhook_endpoint (url, events, secret, created_at, active) VALUES"
                " ('https://hooks.example/', 'digest.sent', 'whsec_c2VjcmV0', '2026-12-01', :yes)"
            ),
            {"yes": True},
        )
        db.session.commit()
        upgrade(revision="0034")
        sealed_totp = db.session.scalar(text("SELECT totp_secret FROM admin"))
        sealed_webhook = db.session.scalar(text("SELECT secret FROM webhook_endpoint"))
        assert "JBSWY3DPEHPK3PXP" not in sealed_totp
        assert "whsec_" not in sealed_webhook
        assert secret_box.open_sealed(sealed_totp, secret_box.TOTP) == "JBSWY3DPEHPK3PXP"
        assert secret_box.open_sealed(sealed_webhook, secret_box.WEBHOOK) == "whsec_c2VjcmV0"
        db.session.commit()
        downgrade(revision="0031")
        assert db.session.scalar(text("SELECT totp_secret FROM admin")) == "JBSWY3DPEHPK3PXP"
        assert db.session.scalar(text("SELECT secret FROM webhook_endpoint")) == "whsec_c2VjcmV0"
        db.session.commit()
        upgrade()
        db.session.remove()
        db.engine.dispose()


def test_one_purpose_key_opens_nothing_sealed_for_another(app):
    with app.app_context():
        sealed = secret_box.seal("whsec_c2VjcmV0", secret_box.WEBHOOK)
        with pytest.raises(secret_box.CannotOpen):
            secret_box.open_sealed(sealed, secret_box.TOTP)
        assert secret_box.signing_keys(app.config)[-1] not in sealed
