"""The admin area: login, subscribers."""

import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from newsletter import accounts, blocked_domains, digests, directory, posts, privacy, settings
from newsletter.extensions import db, limiter, login_manager
from newsletter.mail import digest as digest_mail
from newsletter.models import Digest, Post, Subscriber, SubscriberStatus
from newsletter.sending import hints
from newsletter.web.forms import (
    ActionForm,
    BlockedDomainsForm,
    DigestForm,
    ImportForm,
    LoginForm,
    LogoutForm,
    PostForm,
    ScheduleForm,
    SettingsForm,
    TestSendForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")


@login_manager.user_loader
def load_admin(session_id):
    return accounts.admin_for_session(session_id)


@bp.before_request
def require_login():
    if request.endpoint != "admin.login" and not current_user.is_authenticated:
        return login_manager.unauthorized()


@bp.context_processor
def logout_form():
    return {"logout_form": LogoutForm()}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    key_func=lambda: f"account:{request.form.get('email', '').strip().lower()}",
    methods=["POST"],
    # Only failures count: an admin who logs in often is not slowed down.
    deduct_when=lambda response: response.status_code == 401,
)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        admin = accounts.authenticate(form.email.data, form.password.data)
        if admin is not None:
            login_user(admin)
            return redirect(safe_next(request.args.get("next")))
        flash("Wrong email or password.", "error")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form)


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


@bp.get("/")
def dashboard():
    return render_template("admin/dashboard.html", counts=directory.status_counts())


@bp.get("/subscribers")
def subscribers():
    query = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    if status not in {s.value for s in SubscriberStatus}:
        status = ""
    page = directory.search(query, status, page=request.args.get("page", 1, type=int))
    return render_template(
        "admin/subscribers.html",
        action_form=ActionForm(),
        page=page,
        query=query,
        status=status,
        counts=directory.status_counts(),
        statuses=[s.value for s in SubscriberStatus],
    )


@bp.post("/subscribers/<int:subscriber_id>/erase")
def erase_subscriber(subscriber_id):
    """Erase a subscriber at their request (by mail, by phone): as "Delete my data"."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        email = subscriber.email
        privacy.erase(subscriber, by="admin")
        flash(f"Erased {email}; the address will not be added again.", "info")
    return redirect(url_for("admin.subscribers"))


@bp.get("/subscribers.csv")
def export_subscribers():
    return Response(
        stream_with_context(directory.export_rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=subscribers.csv"},
    )


@bp.route("/subscribers/import", methods=["GET", "POST"])
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
    return render_template("admin/import.html", form=ImportForm(formdata=None), report=report)


@bp.get("/posts")
def post_list():
    return render_template("admin/posts.html", posts=posts.recent_posts())


@bp.route("/posts/new", methods=["GET", "POST"], defaults={"post_id": None})
@bp.route("/posts/<int:post_id>", methods=["GET", "POST"])
def edit_post(post_id):
    post = db.get_or_404(Post, post_id) if post_id else None
    form = PostForm(obj=post)
    if form.validate_on_submit():
        posts.save_post(post, form.title.data, form.link.data, form.summary_html.data)
        flash("Post saved.", "note")
        return redirect(url_for("admin.post_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/post_form.html", form=form, post=post), status


@bp.get("/digests")
def digest_list():
    return render_template("admin/digests.html", history=digests.history())


@bp.route("/digests/new", methods=["GET", "POST"])
def new_digest():
    form = DigestForm()
    unsent = digests.unsent_posts()
    form.posts.choices = [SelectChoice(post.id, post.title) for post in unsent]
    if request.method == "GET":
        form.posts.data = [post.id for post in unsent]
    if form.validate_on_submit():
        try:
            digest = digests.create_digest(form.subject.data, form.intro.data, form.posts.data)
        except digests.DigestError as error:
            form.posts.errors.append(str(error))
        else:
            return redirect(url_for("admin.show_digest", digest_id=digest.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/digest_form.html", form=form), status


@bp.get("/digests/<int:digest_id>")
def show_digest(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    html, text = digest_mail.render(
        digest, links={"unsubscribe_url": "#unsubscribe", "preferences_url": "#preferences"}
    )
    return render_template(
        "admin/digest.html",
        digest=digest,
        preview_html=html,
        preview_text=text,
        progress=digests.progress(digest_id),
        test_form=TestSendForm(),
        schedule_form=ScheduleForm(),
        action_form=ActionForm(),
    )


@bp.get("/digests/<int:digest_id>/progress")
def digest_progress(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    return jsonify(status=digest.status, **digests.progress(digest_id))


@bp.post("/digests/<int:digest_id>/test")
def test_digest(digest_id):
    db.get_or_404(Digest, digest_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        flash("Give an address for the test copy.", "error")
    elif hints.send_test_copy(digest_id, form.email.data):
        flash(f"A test copy is on its way to {form.email.data}.", "note")
    else:
        flash("The workers cannot be reached right now; try the test copy again soon.", "error")
    return redirect(url_for("admin.show_digest", digest_id=digest_id))


@bp.post("/digests/<int:digest_id>/<any(send, schedule, pause, resume):action>")
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
    return redirect(url_for("admin.show_digest", digest_id=digest_id))


@bp.route("/settings", methods=["GET", "POST"])
def edit_settings():
    form = SettingsForm(obj=settings.current())
    if form.validate_on_submit():
        fields = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
        settings.update(**fields)
        flash("Settings saved.", "note")
        return redirect(url_for("admin.edit_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/settings.html", form=form), status


@bp.route("/blocked-domains", methods=["GET", "POST"])
def edit_blocked_domains():
    form = BlockedDomainsForm()
    if form.validate_on_submit():
        try:
            domains = blocked_domains.parse(form.domains.data or "")
        except blocked_domains.InvalidBlocklist as error:
            form.domains.errors.append(str(error))
        else:
            blocked_domains.replace(domains)
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
