"""Pages for subscribers: sign up, confirm, unsubscribe."""

import re

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from newsletter.content import newsletters
from newsletter.core import i18n, tokens
from newsletter.core.addresses import InvalidSignup
from newsletter.extensions import csrf, limiter
from newsletter.mail.relay import uses_outbox
from newsletter.subscribers import captcha, lifecycle, privacy
from newsletter.subscribers.models import SubscriberStatus
from newsletter.web.languages import browser_locale, speak_to
from newsletter.web.security import embeddable

bp = Blueprint("public", __name__)

SOURCE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
# A field hidden from people (see public/index.html) that form-filling bots fill in.
HONEYPOT = "website"


def signup_source(default, values=None):
    """Which form a sign-up came from: an embedded form may name itself in ``source``."""
    source = (request.form if values is None else values).get("source", "")
    return source if isinstance(source, str) and SOURCE_PATTERN.fullmatch(source) else default


@bp.context_processor
def captcha_provider():
    """The check the sign-up form shows (public/captcha.html), if any; and, for the
    pages that show them, the newsletters to choose from (read only when shown)."""
    return {"captcha": captcha.provider(), "newsletter_choices": newsletters.all_newsletters}


# Sent by a form that shows the newsletters, so that none ticked is told from none shown.
NEWSLETTERS_SHOWN = "newsletters_shown"


def chosen_newsletters():
    """The slugs a form ticked, or None when it showed no choice."""
    if not request.form.get(NEWSLETTERS_SHOWN):
        return None
    return request.form.getlist("newsletters")


@bp.get("/")
def index():
    return render_template("public/index.html")


def signup_rate_limit():
    return current_app.config["SIGNUP_RATE_LIMIT"]


def address_rate_limit():
    return current_app.config["SIGNUP_ADDRESS_RATE_LIMIT"]


def signup_address():
    """The address a sign-up is for: the key of a limit that many clients share, so
    that a botnet cannot hammer one victim's address either."""
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if isinstance(data, dict | MultiDict) else None
    return f"address:{str(email or '').strip().lower()}"


def limit_per_address(view):
    return limiter.shared_limit(
        address_rate_limit, scope="signup-address", key_func=signup_address
    )(view)


@bp.post("/subscribe")
@limiter.shared_limit(signup_rate_limit, scope="signup")
@limit_per_address
def subscribe():
    refusal = sign_up_from_form(default_source="form")
    if refusal:
        return render_signup_form("public/index.html", *refusal)
    return render_check_email(request.form.get("email", ""))


@bp.get("/embed")
@embeddable
def embed():
    """The sign-up box alone, for the sites of EMBED_ORIGINS to show in a frame."""
    return render_template("public/embed.html", source=signup_source("embed", request.args))


@bp.get("/embed.js")
def embed_script():
    """The script that draws the sign-up box on another site's page
    (templates/public/embed.js), with its words in every language we have: the script
    picks the subscriber's, so one cached copy serves every subscriber."""
    response = current_app.response_class(
        render_template(
            "public/embed.js", catalogs=embed_catalogs(), default_language=i18n.default_locale()
        ),
        mimetype="text/javascript",
    )
    response.cache_control.max_age = 3600
    response.cache_control.public = True
    return response


# What the box of /embed.js says, as it says it in each language.
EMBED_WORDS = {
    "email": _l("Email address"),
    "name": _l("Name (optional)"),
    "subscribe": _l("Subscribe"),
    "success": _l("Success! Now check your email"),
    "next": _l(
        "Open the email we sent and press the button behind its link. "
        "Nothing after a few minutes? Look in your spam folder."
    ),
    "failed": _l("That did not work; please try again."),
    "unreachable": _l("The newsletter could not be reached; please try again later."),
}


def embed_catalogs() -> dict[str, dict[str, str]]:
    catalogs = {}
    for language in i18n.LANGUAGES:
        with force_locale(language):
            catalogs[language] = {key: str(words) for key, words in EMBED_WORDS.items()}
    return catalogs


@bp.post("/embed")
@embeddable
@limiter.shared_limit(signup_rate_limit, scope="signup")
@limit_per_address
def embed_subscribe():
    refusal = sign_up_from_form(default_source="embed")
    if refusal:
        return render_signup_form("public/embed.html", *refusal, source=signup_source("embed"))
    return render_template("public/embed_done.html", outbox=uses_outbox())


def sign_up_from_form(default_source):
    """Sign up the subscriber of the posted form; what stopped it, with its status, or None."""
    email, name = request.form.get("email", ""), request.form.get("name", "")
    if request.form.get(HONEYPOT):
        # Only a bot fills in the field people cannot see: it gets the same answer.
        return None
    try:
        captcha.check(captcha_token(), request.remote_addr)
        lifecycle.subscribe(
            email,
            name,
            source=signup_source(default_source),
            ip=request.remote_addr,
            newsletters=chosen_newsletters(),
            locale=browser_locale(),
        )
    except captcha.CaptchaFailed as error:
        return error, error.status
    except InvalidSignup as error:
        return error, 400
    return None


def render_signup_form(template, error, status, **extra):
    """The form again, filled in as it was sent, with what stopped the sign-up."""
    form = request.form
    return render_template(
        template,
        error=str(error),
        email=form.get("email", ""),
        name=form.get("name", ""),
        # The choice as it was sent, when the form showed one.
        **({"ticked": form.getlist("newsletters")} if form.get(NEWSLETTERS_SHOWN) else {}),
        **extra,
    ), status


def captcha_token():
    """The token the form's widget filled in, under the provider's own field name."""
    chosen = captcha.provider()
    return request.form.get(chosen.form_field) if chosen else None


@bp.get("/altcha/challenge")
def altcha_challenge():
    """A fresh proof-of-work challenge for the ALTCHA widget on the sign-up form."""
    chosen = captcha.provider()
    if chosen is None or chosen.name != "altcha":
        abort(404)
    response = jsonify(captcha.new_altcha_challenge())
    response.headers["Cache-Control"] = "no-store"
    return response


def render_check_email(email="", **extra):
    return render_template("public/check_email.html", outbox=uses_outbox(), email=email, **extra)


@bp.post("/confirm-code")
@limiter.shared_limit(signup_rate_limit, scope="signup")
def confirm_with_code():
    """The code from the confirmation email, typed on the "check your email" page."""
    email = request.form.get("email", "")
    try:
        subscriber = lifecycle.confirm_with_code(
            email, request.form.get("code", ""), ip=request.remote_addr
        )
    except lifecycle.CodeNotValid:
        error = _(
            "That code does not work: check the address and the six digits in the email, "
            "or use the link in it. After five wrong tries, sign up again for a new email."
        )
        return render_check_email(email, error=error), 400
    speak_to(subscriber)
    return render_template("public/confirmed.html", subscriber=subscriber)


@bp.get("/confirm/<token>")
def confirm_page(token):
    subscriber = lifecycle.check_confirmation(token)
    speak_to(subscriber)
    if subscriber.status == SubscriberStatus.CONFIRMED:
        return render_template("public/confirmed.html", subscriber=subscriber)
    return render_template("public/confirm.html", subscriber=subscriber, token=token)


@bp.post("/confirm/<token>")
def confirm(token):
    subscriber = lifecycle.confirm(token, ip=request.remote_addr)
    speak_to(subscriber)
    return render_template("public/confirmed.html", subscriber=subscriber)


@bp.post("/confirm/<token>/renew")
def renew_confirmation(token):
    lifecycle.renew_confirmation(token)
    return render_check_email()


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token):
    return unsubscribe_template("public/unsubscribe.html", lifecycle.check_unsubscribe(token))


@bp.post("/unsubscribe/<token>")
def unsubscribe(token):
    """The buttons' POST and RFC 8058 one-click: no cookies, no CSRF token, no redirect.
    A link from one newsletter's email leaves that newsletter, unless the page's second
    button asks for everything (``everything=yes``)."""
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    left = lifecycle.unsubscribe(
        token,
        ip=request.remote_addr,
        everything=request.form.get("everything") == "yes",
        source="one-click" if one_click else "link",
    )
    return unsubscribe_template(
        "public/unsubscribed.html",
        left,
        preferences_token=lifecycle.preferences_token_for(left),
    )


def unsubscribe_template(template, link, **extra):
    """An unsubscribe page, in the subscriber's language: the newsletter the link names
    (None: everything) and the ones the subscriber still gets."""
    speak_to(link.subscriber)
    return render_template(
        template,
        subscriber=link.subscriber,
        newsletter=link.newsletter,
        joined=newsletters.joined_by(link.subscriber.id),
        token=request.view_args["token"],
        **extra,
    )


@bp.get("/preferences/<token>")
def preferences(token):
    subscriber = lifecycle.check_preferences(token)
    speak_to(subscriber)
    return render_preferences(subscriber, token)


@bp.post("/preferences/<token>")
def save_preferences(token):
    resubscribe = request.form.get("action") == "resubscribe"
    try:
        subscriber = lifecycle.update_preferences(
            token,
            request.form.get("name", ""),
            resubscribe=resubscribe,
            ip=request.remote_addr,
            newsletters=chosen_newsletters(),
            locale=request.form.get("language"),
        )
    except InvalidSignup as error:
        subscriber = lifecycle.check_preferences(token)
        speak_to(subscriber)
        return render_preferences(subscriber, token, error=str(error)), 400
    if (refused := tracking_refused()) is not None:
        lifecycle.refuse_tracking(subscriber, refused)
    # A new language shows at once, on the page that says it is saved.
    speak_to(subscriber)
    confirmation_sent = resubscribe and subscriber.status == SubscriberStatus.PENDING
    return render_preferences(subscriber, token, saved=True, confirmation_sent=confirmation_sent)


def tracking_refused() -> bool | None:
    """The "don't track me" box, when the form showed it (an unticked box sends nothing)."""
    if "tracking_shown" not in request.form:
        return None
    return request.form.get("tracking_refused") == "yes"


@bp.get("/preferences/<token>/data")
def download_data(token):
    """Everything kept about the subscriber, as a JSON file."""
    subscriber = lifecycle.check_preferences(token, data=True)
    response = jsonify(privacy.data_of(subscriber))
    response.headers["Content-Disposition"] = 'attachment; filename="my-newsletter-data.json"'
    return response


@bp.post("/preferences/<token>/erase")
def erase_data(token):
    subscriber = lifecycle.check_preferences(token, data=True)
    speak_to(subscriber)
    if request.form.get("confirm") != "yes":
        error = _("Tick the box to say you understand that this cannot be undone.")
        return render_preferences(subscriber, token, erase_error=error), 400
    privacy.erase(subscriber, by="reader")
    return render_template(
        "public/message.html",
        title=_("Your data is deleted"),
        text=_(
            "We deleted your subscription and everything we kept about you. "
            "We will not email this address again."
        ),
    )


DATA_NEEDS_EMAIL = _l(
    "Downloading or deleting your data needs the preferences link from one of our emails, "
    "not the one on the unsubscribe page: unsubscribe links never expire and may have been "
    "forwarded. Use the preferences link in the latest email from us, or ask for one here: "
    "we email it to the address of this subscription."
)


@bp.post("/preferences/<token>/email-data-link")
def email_data_link(token):
    """The button "Email me a link to my data": owes the subscriber an email with a
    preferences link that opens their data, and answers the same whatever happened
    (sent, limited, or an address we may not mail), so the page tells nobody anything
    about the subscriber."""
    # Subscribers' forms are exempt (their links are the secret), but this one sends mail:
    # only a page of this site may press it, as the admin's forms.
    csrf.protect()
    subscriber = lifecycle.email_data_link(token)
    speak_to(subscriber)
    return render_template(
        "public/message.html",
        title=_("Check your email"),
        text=_(
            "If we can send email to the address of this subscription, a link to your data "
            "is on its way to it. We send at most a few a day; the link in the latest one works."
        ),
    )


def render_preferences(subscriber, token, **extra):
    return render_template(
        "public/preferences.html",
        subscriber=subscriber,
        token=token,
        unsubscribe_token=tokens.make_token(tokens.UNSUBSCRIBE, subscriber),
        opens_data=lifecycle.link_opens_data(token),
        data_needs_email=DATA_NEEDS_EMAIL,
        chosen=newsletters.chosen_by(subscriber.id),
        languages=i18n.LANGUAGES,
        language=i18n.subscriber_locale(subscriber.locale),
        **extra,
    )


@bp.errorhandler(tokens.TokenExpired)
def link_expired(_error):
    if request.url_rule.rule.startswith("/preferences/"):
        return render_template(
            "public/message.html",
            title=_("This link has expired"),
            text=_(
                "Links to your preferences work for a limited time. "
                "Use the link in the most recent email from us."
            ),
        ), 410
    token = request.view_args["token"]
    return render_template("public/link_expired.html", token=token), 410


@bp.errorhandler(lifecycle.DataNeedsEmailedLink)
def data_needs_emailed_link(_error):
    return render_template(
        "public/message.html",
        title=_("This link cannot open your data"),
        text=DATA_NEEDS_EMAIL,
        data_link_token=request.view_args["token"],
    ), 403


@bp.errorhandler(tokens.TokenInvalid)
def link_tampered(_error):
    return render_template(
        "public/message.html",
        title=_("This link is not valid"),
        text=_("The link is damaged or incomplete. Please copy the whole link from the email."),
    ), 400


@bp.errorhandler(lifecycle.LinkNotValid)
def link_outdated(_error):
    return render_template(
        "public/message.html",
        title=_("This link no longer works"),
        text=_(
            "It belongs to a subscription that was cancelled or replaced. "
            "Use the link in the most recent email, or subscribe again."
        ),
    ), 404
