"""Logging in (the password, then the code when the admin turned the second factor on),
logging out, and the admin's own two-factor settings and recovery codes."""

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from newsletter.admins import accounts, audit, logins, two_factor
from newsletter.extensions import limiter
from newsletter.web.admin import bp, no_store, open_to_visitors
from newsletter.web.forms import CodeForm, LoginForm, LogoutForm, ProveIdentityForm

# The session's record of a right password whose second factor is still to come.
PENDING_LOGIN = "pending_login"
# A new secret waits here, in the admin's own signed cookie, until a code from the app
# confirms it: an abandoned setup leaves nothing behind in the database.
SETUP_SECRET = "two_factor_setup_secret"


def login_account():
    """The account a login step, or a proof that it is really its admin, is aimed at."""
    if request.endpoint == "admin.login":
        email = request.form.get("email", "")
    elif request.endpoint == "admin.login_two_factor":
        email = session.get(PENDING_LOGIN, {}).get("email", "")
    else:
        email = getattr(current_user, "email", "")
    return email.strip().lower()


def login_account_key():
    """The account and the client address together: failures from one address slow
    down that address only, so that nobody can keep the owner out by failing on
    purpose from elsewhere (logins.py notices failures for one account from many)."""
    return f"account:{login_account()}|{request.remote_addr}"


# Shared scopes: the password and the code that follows it count against the same limits.
limit_login_per_client = limiter.shared_limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"], scope="admin-login", methods=["POST"]
)
limit_failures_per_account = limiter.shared_limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    scope="admin-login-account",
    key_func=login_account_key,
    methods=["POST"],
    # Only failures count: an admin who logs in often is not slowed down.
    deduct_when=lambda response: response.status_code == 401,
)


@bp.route("/login", methods=["GET", "POST"])
@open_to_visitors
@limit_login_per_client
@limit_failures_per_account
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form)
    admin = accounts.authenticate(form.email.data, form.password.data)
    if admin is None:
        logins.record_failure(form.email.data, "password")
        flash("Wrong email or password.", "error")
        return render_template("admin/login.html", form=form), 401
    if admin.totp_secret is None:
        return complete_login(admin, "password")
    session[PENDING_LOGIN] = two_factor.pending_login(admin)
    return redirect(url_for("admin.login_two_factor", next=request.args.get("next")))


@bp.route("/login/two-factor", methods=["GET", "POST"])
@open_to_visitors
@limit_login_per_client
@limit_failures_per_account
def login_two_factor():
    admin = two_factor.admin_awaiting_code(session.get(PENDING_LOGIN))
    if admin is None:
        session.pop(PENDING_LOGIN, None)
        minutes = two_factor.PENDING_LOGIN_SECONDS // 60
        flash(
            f"Please log in again: the code must follow the password within {minutes} minutes.",
            "error",
        )
        return redirect(url_for("admin.login", next=request.args.get("next")))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("admin/login_two_factor.html", form=form)
    if two_factor.take_code(admin, form.code.data):
        return complete_login(admin, "password and code")
    if two_factor.use_recovery_code(admin, form.code.data):
        left = two_factor.recovery_codes_left(admin)
        flash(f"You used a recovery code; it will not work again. Codes left: {left}.", "note")
        return complete_login(admin, "password and recovery code")
    logins.record_failure(admin.email, "second factor")
    flash("Wrong code.", "error")
    return render_template("admin/login_two_factor.html", form=form), 401


def complete_login(admin, step):
    session.pop(PENDING_LOGIN, None)
    # A setup begun by whoever used this browser before must not become this admin's.
    session.pop(SETUP_SECRET, None)
    accounts.record_login(admin)
    login_user(admin)
    logins.record_login(admin, step)
    return redirect(safe_next(request.args.get("next")))


def safe_next(target):
    """Only follow ``next`` within the admin area, never to another site."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard")


@bp.post("/logout")
def logout():
    if LogoutForm().validate_on_submit():
        # A copy of this session's cookie, wherever it went, ends with it.
        accounts.end_sessions(current_user)
        logout_user()
    return redirect(url_for("admin.login"))


@bp.route("/two-factor", methods=["GET", "POST"])
def two_factor_settings():
    """Turning it on: scan the secret, then confirm with a code before it counts."""
    if current_user.totp_secret is not None:
        return two_factor_page(proof_form=ProveIdentityForm())
    secret = session.setdefault(SETUP_SECRET, two_factor.new_secret())
    form = CodeForm()
    if not form.validate_on_submit():
        return two_factor_page(secret=secret, code_form=form)
    codes = two_factor.enable(current_user, secret, form.code.data)
    if codes is None:
        form.code.errors.append("That is not the code the app shows now; try the next one.")
        return two_factor_page(secret=secret, code_form=form, status=400)
    session.pop(SETUP_SECRET)
    audit.record("two_factor.enable", target=current_user.email)
    # Enabling ended every session, this one too: it goes on under the new token.
    login_user(current_user._get_current_object())
    return no_store(render_template("admin/recovery_codes.html", codes=codes, new=True))


@bp.post("/two-factor/disable")
@limit_failures_per_account
def disable_two_factor():
    if current_user.totp_secret is None:
        return redirect(url_for("admin.two_factor_settings"))
    form = ProveIdentityForm()
    if not identity_proven(form):
        return wrong_proof(form)
    admin = current_user._get_current_object()
    two_factor.disable(admin)
    audit.record("two_factor.disable", target=admin.email)
    login_user(admin)
    flash("Two-factor login is off; every other session has ended.", "note")
    return redirect(url_for("admin.two_factor_settings"))


@bp.post("/two-factor/recovery-codes")
@limit_failures_per_account
def new_recovery_codes():
    if current_user.totp_secret is None:
        return redirect(url_for("admin.two_factor_settings"))
    form = ProveIdentityForm()
    if not identity_proven(form):
        return wrong_proof(form)
    codes = two_factor.new_recovery_codes(current_user)
    audit.record("two_factor.recovery_codes", target=current_user.email)
    return no_store(render_template("admin/recovery_codes.html", codes=codes, new=False))


def identity_proven(form):
    return form.validate_on_submit() and two_factor.proves_identity(current_user, form.proof.data)


def wrong_proof(form):
    form.proof.errors.append("That is neither the code your app shows now nor your password.")
    # 401, like a wrong password at login: it counts against the account's limit.
    return two_factor_page(proof_form=form, status=401)


def two_factor_page(secret=None, code_form=None, proof_form=None, status=200):
    setup = None
    if secret is not None:
        uri = two_factor.setup_uri(current_user, secret)
        setup = {"secret": secret, "qr_code": two_factor.qr_code(uri)}
    html = render_template(
        "admin/two_factor.html",
        setup=setup,
        code_form=code_form,
        proof_form=proof_form,
        recovery_codes_left=two_factor.recovery_codes_left(current_user),
    )
    return no_store(html, status)
