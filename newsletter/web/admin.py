"""The admin area: login (with its second factor), subscribers, posts, digests, newsletters,
settings."""

import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from newsletter.admins import (
    accounts,
    api_keys,
    audit,
    deliverability,
    logins,
    roles,
    stats,
    two_factor,
)
from newsletter.bounces import feedback, inbound
from newsletter.content import composer, digests, email_templates, newsletters, posts
from newsletter.core import i18n, settings
from newsletter.core.addresses import InvalidSignup
from newsletter.extensions import db, limiter, login_manager
from newsletter.models import (
    Digest,
    DigestStatus,
    Newsletter,
    Post,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from newsletter.sending import hints
from newsletter.subscribers import blocked_domains, directory, privacy, subscriptions
from newsletter.web import charts, digest_figures
from newsletter.web.forms import (
    ActionForm,
    BlockedDomainsForm,
    CodeForm,
    DigestForm,
    EmailTemplateForm,
    ImportForm,
    LiftAddressForm,
    LoginForm,
    LogoutForm,
    NewsletterForm,
    PostForm,
    ProveIdentityForm,
    ScheduleForm,
    SettingsForm,
    TestSendForm,
    WebhookEndpointForm,
)
from newsletter.webhooks import outgoing

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The session's record of a right password whose second factor is still to come.
PENDING_LOGIN = "pending_login"
# A new secret waits here, in the admin's own signed cookie, until a code from the app
# confirms it: an abandoned setup leaves nothing behind in the database.
SETUP_SECRET = "two_factor_setup_secret"
LOGIN_ENDPOINTS = {"admin.login", "admin.login_two_factor"}
# The largest id an INTEGER column holds: a larger one is no place in any list.
MAX_ROW_ID = 2**31 - 1


@login_manager.user_loader
def load_admin(session_id):
    return accounts.admin_for_session(session_id)


@bp.before_request
def require_login():
    if request.endpoint not in LOGIN_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()


@bp.context_processor
def logout_form():
    return {"logout_form": LogoutForm()}


@bp.context_processor
def permissions():
    """``can("…")`` in templates: a button the admin may not use is not shown."""
    return {"can": lambda permission: roles.can(current_user, permission)}


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


def no_store(html, status=200):
    """A page with a secret or recovery codes on it stays out of every cache."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def dashboard():
    history = stats.daily_history()
    recent_digests = stats.recent_digests()
    return render_template(
        "admin/dashboard.html",
        counts=directory.status_counts(),
        history=history,
        chart=charts.list_chart(history),
        recent_digests=recent_digests,
        active_sends=stats.active_sends(counted=recent_digests),
        engagement_rates=stats.recent_engagement(),
    )


@bp.get("/subscribers")
def subscribers():
    query = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    if status not in {s.value for s in SubscriberStatus}:
        status = ""
    choices = newsletters.all_newsletters()
    newsletter = next(
        (choice for choice in choices if choice.slug == request.args.get("newsletter")), None
    )
    after, before = row_id_arg("after"), row_id_arg("before")
    counts = directory.status_counts()
    listing = directory.browse(
        query,
        status,
        after=after,
        before=before,
        counts=counts,
        newsletter_id=newsletter and newsletter.id,
    )
    return render_template(
        "admin/subscribers.html",
        action_form=ActionForm(),
        lift_form=LiftAddressForm(),
        listing=listing,
        query=query,
        status=status,
        here={"after": after, "before": before},
        newsletter=newsletter.slug if newsletter else "",
        newsletter_options=choices,
        counts=counts,
        statuses=[s.value for s in SubscriberStatus],
    )


def row_id_arg(name):
    """A row id from the query string (0: before the first), or None when it is missing
    or no id could be."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 <= value <= MAX_ROW_ID else None


@bp.get("/inbound")
def inbound_messages():
    """What came back to the bounce and unsubscribe addresses, and what became of it."""
    return render_template("admin/inbound.html", messages=inbound.recent())


@bp.get("/subscribers/<id:subscriber_id>")
def show_subscriber(subscriber_id):
    """One reader: their consent, the mail they were sent, and what came back of it."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    return render_template(
        "admin/subscriber.html",
        subscriber=subscriber,
        record=privacy.data_of(subscriber),
        feedback_events=feedback.events_of(subscriber.id),
        language=i18n.LANGUAGES[i18n.reader_locale(subscriber.locale)],
        language_is_default=subscriber.locale is None,
        suppressed=subscriptions.is_suppressed(subscriber),
        action_form=ActionForm(),
    )


@bp.post("/subscribers/<id:subscriber_id>/erase")
@roles.required("subscribers.write")
def erase_subscriber(subscriber_id):
    """Erase a subscriber at their request (by mail, by phone): as "Delete my data"."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        email = subscriber.email
        privacy.erase(subscriber, by="admin")
        # The entry names the reader by id only: the erasure keeps no address.
        audit.record("subscribers.erase", target=f"subscriber {subscriber_id}")
        flash(f"Erased {email}; the address will not be added again.", "info")
    return redirect(url_for("admin.subscribers"))


@bp.post("/subscribers/<id:subscriber_id>/<any(resend, unsubscribe):action>")
@roles.required("subscribers.write")
def subscriber_action(subscriber_id, action):
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        flash(BULK_ACTIONS[action]([subscriber.id]), "info")
        audit.record(f"subscribers.{action}", target=f"subscriber {subscriber_id}")
    return redirect(url_for("admin.show_subscriber", subscriber_id=subscriber_id))


@bp.post("/subscribers/<id:subscriber_id>/lift-suppression")
@roles.required("subscribers.write")
def lift_suppression(subscriber_id):
    """Allow a bounced, complained or suppressed address again: the reader gets a fresh
    confirmation email, and no other mail until they confirm."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        try:
            owed = subscriptions.lift_suppression(subscriber)
        except subscriptions.NotSuppressed as error:
            flash(str(error), "error")
        else:
            audit.record("suppressions.lift", target=f"subscriber {subscriber_id}")
            flash(lifted_message(subscriber.email, owed), "info")
    return redirect(url_for("admin.show_subscriber", subscriber_id=subscriber_id))


@bp.post("/subscribers/lift-erased")
@roles.required("subscribers.write")
def lift_erased_address():
    """Allow an erased address again: it signs up afresh and must confirm."""
    form = LiftAddressForm()
    if not form.validate_on_submit():
        abort(400, "Give the erased address to allow again.")
    try:
        subscriptions.lift_erased_address(form.email.data)
    except (subscriptions.NotSuppressed, InvalidSignup) as error:
        flash(str(error), "error")
    else:
        audit.record("suppressions.lift", target="an erased address", detail="erased")
        flash(lifted_message(form.email.data, owed=True), "info")
    return redirect(url_for("admin.subscribers"))


def lifted_message(email, owed):
    if owed:
        return (
            f"{email} is allowed again: a confirmation email is on its way, and no other "
            "mail until they confirm."
        )
    return (
        f"{email} is allowed again, pending; they had as many confirmation emails today "
        "as the limit allows."
    )


@bp.post("/subscribers/bulk")
@roles.required("subscribers.write")
def bulk_action():
    """One action on the readers ticked in the list."""
    name = request.form.get("action", "")
    action = BULK_ACTIONS.get(name)
    ids = [int(n) for n in request.form.getlist("ids") if n.isdigit() and int(n) < 2**31]
    if not ActionForm().validate_on_submit() or action is None or not ids:
        flash("Tick some subscribers and choose what to do with them.", "error")
    else:
        flash(action(ids), "info")
        audit.record("subscribers.bulk", target=name, detail=f"subscribers {ids_text(ids)}")
    return redirect(url_for("admin.subscribers", **request.args))


def ids_text(ids):
    return " ".join(str(n) for n in ids)


def resend_to(ids):
    owed = subscriptions.resend_confirmation(ids)
    return (
        f"A new confirmation email is on its way to {owed} of {len(ids)} "
        "(only pending readers get one, within the limits of the sign-up form)."
    )


def unsubscribe_all(ids):
    changed = subscriptions.unsubscribe_by_admin(ids)
    return f"Unsubscribed {changed} of {len(ids)} (the others were not getting mail)."


def erase_all(ids):
    erased = privacy.erase_many(ids, by="admin")
    return f"Erased {erased}; their addresses will not be added again."


BULK_ACTIONS = {"resend": resend_to, "unsubscribe": unsubscribe_all, "erase": erase_all}


@bp.get("/subscribers.csv")
@roles.required("subscribers.export")
def export_subscribers():
    audit.record("subscribers.export", detail="subscribers.csv")
    return Response(
        stream_with_context(directory.export_rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=subscribers.csv"},
    )


@bp.route("/subscribers/import", methods=["GET", "POST"])
@roles.required("subscribers.write")
def import_subscribers():
    form = ImportForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/import.html", form=form), status
    lines = io.TextIOWrapper(form.file.data.stream, encoding="utf-8-sig", newline="")
    try:
        report = directory.import_subscribers(lines, confirmed=form.confirmed.data)
    except directory.ImportFileError as error:
        form.file.errors.append(str(error))
        return render_template("admin/import.html", form=form), 400
    audit.record(
        "subscribers.import",
        target=form.file.data.filename,
        detail=f"{import_summary(report)}, confirmed: {'yes' if form.confirmed.data else 'no'}",
    )
    return render_template("admin/import.html", form=ImportForm(formdata=None), report=report)


def import_summary(report):
    return f"added {report.added}, skipped {report.skipped}, rejected {report.rejected}"


@bp.get("/posts")
def post_list():
    return render_template("admin/posts.html", posts=posts.recent_posts())


@bp.route("/posts/new", methods=["GET", "POST"], defaults={"post_id": None})
@bp.route("/posts/<id:post_id>", methods=["GET", "POST"])
@roles.required("posts.write", writes_only=True)
def edit_post(post_id):
    post = db.get_or_404(Post, post_id) if post_id else None
    form = PostForm(obj=post)
    if previewing():
        return render_template(
            "admin/post_form.html", form=form, post=post, preview=post_preview(post)
        )
    if form.validate_on_submit():
        # A form posted without its summary field (a script) means an empty summary.
        summary = form.summary_markdown.data or ""
        saved = posts.save_post(post, form.title.data, form.link.data, summary)
        audit.record("posts.save", target=f"post {saved.id}", detail=form.title.data)
        flash("Post saved.", "note")
        return redirect(url_for("admin.post_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/post_form.html", form=form, post=post), status


@bp.post("/preview")
@roles.required("posts.write")
def preview():
    """The composer's live preview: the email of what its form holds, unsaved.
    ``composing`` says which form: a post (``post_id``: the one it edits) or a digest."""
    if request.args.get("composing") == "post":
        post_id = request.args.get("post_id", type=int)
        shown = post_preview(db.get_or_404(Post, post_id) if post_id else None)
    else:
        shown = digest_preview()
    return jsonify(html=shown.html, text=shown.text)


def previewing() -> bool:
    """Whether the composer's Preview button was pressed: how the preview comes
    without JavaScript (CSRFProtect has checked the form's token already)."""
    return request.method == "POST" and "preview" in request.form


def post_preview(post):
    fields = request.form
    return composer.post_preview(
        post, fields.get("title", ""), fields.get("link", ""), fields.get("summary_markdown", "")
    )


def digest_preview():
    fields = request.form
    return composer.digest_preview(
        fields.get("subject", ""), fields.get("intro", ""), fields.getlist("posts", type=int)
    )


@bp.get("/digests")
def digest_list():
    history = digests.history()
    reactions = feedback.reactions([digest for digest, _counts in history])
    return render_template("admin/digests.html", history=history, reactions=reactions)


@bp.route("/digests/new", methods=["GET", "POST"])
@roles.required("digests.write")
def new_digest():
    form = DigestForm()
    offered = newsletters.all_newsletters()
    form.newsletter.choices = [SelectChoice(one.id, one.name) for one in offered]
    # The posts offered are those not yet sent in the newsletter the digest is for.
    asked = (request.form if request.method == "POST" else request.args).get("newsletter", type=int)
    newsletter = next((one for one in offered if one.id == asked), offered[0])
    form.newsletter.data = newsletter.id
    unsent = digests.unsent_posts(newsletter.id)
    form.posts.choices = [SelectChoice(post.id, post.title) for post in unsent]
    if request.method == "GET":
        form.posts.data = [post.id for post in unsent]
    shown = {"form": form, "newsletter": newsletter, "newsletters": offered}
    if previewing():
        return render_template("admin/digest_form.html", **shown, preview=digest_preview())
    if form.validate_on_submit():
        try:
            digest = digests.create_digest(
                form.subject.data, form.intro.data, form.posts.data, form.newsletter.data
            )
        except digests.DigestError as error:
            form.posts.errors.append(str(error))
        else:
            audit.record("digests.create", target=f"digest {digest.id}", detail=digest.subject)
            return redirect(url_for("admin.show_digest", digest_id=digest.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/digest_form.html", **shown), status


@bp.get("/digests/<id:digest_id>")
def show_digest(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    # Just after "Send now" the digest is still scheduled, due, until a worker starts it:
    # the page follows it from then, not only once it is sending.
    due = digest.status == DigestStatus.SCHEDULED and digest.scheduled_at <= utcnow()
    preview = composer.preview(digest)
    progress = digests.progress(digest_id)
    return render_template(
        "admin/digest.html",
        digest=digest,
        live=due or digest.status == DigestStatus.SENDING,
        preview=preview,
        progress=progress,
        engagement=digest_figures.shown(digest, progress["sent"], preview.html),
        reactions=feedback.reactions([digest])[digest.id],
        test_form=TestSendForm(),
        schedule_form=ScheduleForm(),
        action_form=ActionForm(),
    )


@bp.get("/digests/<id:digest_id>/progress")
def digest_progress(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    return jsonify(status=digest.status, **digests.progress(digest_id))


@bp.post("/digests/<id:digest_id>/test")
@roles.required("digests.write")
def test_digest(digest_id):
    db.get_or_404(Digest, digest_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        flash("Give an address for the test copy.", "error")
    elif hints.send_test_copy(digest_id, form.email.data):
        audit.record("digests.test", target=f"digest {digest_id}", detail=form.email.data)
        flash(f"A test copy is on its way to {form.email.data}.", "note")
    else:
        flash("The workers cannot be reached right now; try the test copy again soon.", "error")
    return redirect(url_for("admin.show_digest", digest_id=digest_id))


@bp.post("/digests/<id:digest_id>/<any(send, schedule, pause, resume):action>")
@roles.required("digests.write")
def digest_action(digest_id, action):
    db.get_or_404(Digest, digest_id)
    form = ScheduleForm() if action == "schedule" else ActionForm()
    if not form.validate_on_submit():
        abort(400, "The form was incomplete or expired; please try again.")
    try:
        if action in ("send", "schedule"):
            digests.schedule(digest_id, form.send_at.data if action == "schedule" else None)
            if action == "send":
                hints.start_digest_send(digest_id)
        elif not digests.set_paused(digest_id, action == "pause"):
            raise digests.DigestError(f"Only a digest that is sending can {action}.")
        elif action == "resume":
            hints.start_digest_send(digest_id)
    except digests.DigestError as error:
        flash(str(error), "error")
    else:
        when = form.send_at.data.isoformat() if action == "schedule" else None
        audit.record(f"digests.{action}", target=f"digest {digest_id}", detail=when)
    return redirect(url_for("admin.show_digest", digest_id=digest_id))


@bp.route("/settings", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_settings():
    form = SettingsForm(obj=settings.current())
    if form.validate_on_submit():
        fields = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
        settings.update(**fields)
        audit.record("settings.update", detail=", ".join(sorted(fields)))
        flash("Settings saved.", "note")
        return redirect(url_for("admin.edit_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/settings.html", form=form), status


@bp.get("/newsletters")
def newsletter_list():
    return render_template("admin/newsletters.html", listed=newsletters.overview())


@bp.route("/newsletters/new", methods=["GET", "POST"])
@roles.required("newsletters.write")
def new_newsletter():
    form = NewsletterForm()
    if form.validate_on_submit():
        try:
            newsletter = newsletters.create(
                form.slug.data,
                form.name.data,
                form.description.data,
                default_on=form.default_on.data,
                public=form.public.data,
            )
        except newsletters.NewsletterError as error:
            form.slug.errors.append(str(error))
        else:
            set_schedule(newsletter, form)
            audit.record("newsletters.create", target=newsletter.slug, detail=newsletter.name)
            flash(f"Newsletter “{newsletter.name}” created.", "note")
            return redirect(url_for("admin.newsletter_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/newsletter_form.html", form=form, newsletter=None), status


@bp.route("/newsletters/<id:newsletter_id>", methods=["GET", "POST"])
@roles.required("newsletters.write", writes_only=True)
def edit_newsletter(newsletter_id):
    newsletter = db.get_or_404(Newsletter, newsletter_id)
    form = NewsletterForm(obj=newsletter)
    # The slug stays what it was made: readers' mail filters and scripts know it.
    del form.slug
    if form.validate_on_submit():
        newsletters.update_newsletter(
            newsletter,
            name=form.name.data,
            description=form.description.data,
            default_on=form.default_on.data,
            public=form.public.data,
        )
        set_schedule(newsletter, form)
        audit.record("newsletters.update", target=newsletter.slug, detail=newsletter.name)
        flash(f"Newsletter “{newsletter.name}” saved.", "note")
        return redirect(url_for("admin.newsletter_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/newsletter_form.html", form=form, newsletter=newsletter), status


def set_schedule(newsletter, form):
    newsletters.set_schedule(
        newsletter,
        form.schedule.data,
        form.schedule_weekday.data,
        form.schedule_hour.data,
        form.schedule_category.data,
    )


@bp.get("/email-templates")
def email_template_list():
    return render_template("admin/email_templates.html", listed=email_templates.listing())


TEMPLATE_NAME = f"<any({', '.join(email_templates.KINDS)}):name>"


@bp.route(f"/email-templates/{TEMPLATE_NAME}", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_email_template(name):
    """Save or preview (with sample data) both parts; either refuses a template that
    could not be sent, saying why."""
    form = EmailTemplateForm(data=email_templates.sources(name))
    shown = None
    if form.validate_on_submit():
        edited = {"html": form.html.data, "text": form.text.data}
        try:
            if previewing():
                shown = email_templates.preview(name, edited)
            else:
                email_templates.save(name, edited)
                audit.record("templates.save", target=name)
                flash(f"The {name} template is saved: the next emails use it.", "note")
                return redirect(url_for("admin.edit_email_template", name=name))
        except email_templates.TemplateRefused as error:
            form[error.part].errors.append(str(error))
    return render_template(
        "admin/email_template.html",
        form=form,
        name=name,
        kind=email_templates.KINDS[name],
        variables=email_templates.variables(name),
        reset_form=ActionForm(),
        preview=shown,
    ), 400 if form.errors else 200


@bp.post(f"/email-templates/{TEMPLATE_NAME}/reset")
@roles.required("settings.write")
def reset_email_template(name):
    if ActionForm().validate_on_submit():
        email_templates.reset(name)
        audit.record("templates.reset", target=name)
        flash(f"The {name} template is the default again.", "note")
    return redirect(url_for("admin.edit_email_template", name=name))


@bp.route("/blocked-domains", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_blocked_domains():
    form = BlockedDomainsForm()
    if form.validate_on_submit():
        try:
            domains = blocked_domains.parse(form.domains.data or "")
        except blocked_domains.InvalidBlocklist as error:
            form.domains.errors.append(str(error))
        else:
            blocked_domains.replace(domains)
            audit.record("blocked_domains.update", detail=" ".join(domains))
            flash(f"Saved: {len(domains)} blocked domains.", "note")
            return redirect(url_for("admin.edit_blocked_domains"))
    if request.method == "GET":
        form.domains.data = "\n".join(blocked_domains.listed())
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/blocked_domains.html",
        form=form,
        disposable_blocked=current_app.config["BLOCK_DISPOSABLE_DOMAINS"],
    ), status


@bp.route("/webhooks", methods=["GET", "POST"])
@roles.required("webhooks.write", writes_only=True)
def webhooks():
    """Outgoing webhooks: the endpoints and how their latest delivery went; a new one's
    secret is shown on the page that adds it, and never again."""
    form = WebhookEndpointForm()
    added = None
    if form.validate_on_submit():
        try:
            added = outgoing.add_endpoint(form.url.data.strip(), form.events.data)
        except outgoing.InvalidEndpoint as error:
            form.url.errors.append(str(error))
        else:
            events = " ".join(form.events.data)
            audit.record("webhooks.create", target=form.url.data.strip(), detail=events)
    status = 400 if form.errors else 200
    html = render_template(
        "admin/webhooks.html",
        form=form,
        added=added,
        endpoints=outgoing.endpoints(),
        action_form=ActionForm(),
    )
    return no_store(html, status)


@bp.post("/webhooks/<id:endpoint_id>/deactivate")
@roles.required("webhooks.write")
def deactivate_webhook(endpoint_id):
    if ActionForm().validate_on_submit():
        outgoing.deactivate(endpoint_id)
        audit.record("webhooks.deactivate", target=f"endpoint {endpoint_id}")
        flash("The endpoint gets no more events.", "note")
    return redirect(url_for("admin.webhooks"))


@bp.get("/api-keys")
def api_key_list():
    """The keys scripts use for /api/v1; each is made with `flask create-api-key`."""
    return render_template(
        "admin/api_keys.html",
        keys=api_keys.all_keys(),
        scopes=api_keys.SCOPES,
        now=utcnow(),
        form=ActionForm(),
    )


@bp.post("/api-keys/<id:key_id>/revoke")
@roles.required("api_keys.write")
def revoke_api_key(key_id):
    if ActionForm().validate_on_submit():
        api_keys.revoke(key_id)
        flash("The key no longer works.", "note")
    return redirect(url_for("admin.api_key_list"))


@bp.get("/deliverability")
def deliverability_report():
    return render_template("admin/deliverability.html", checks=deliverability.run_checks())
