"""A subscriber's own lifecycle: sign-up, confirmation (by link or code), unsubscribe
(from one newsletter or from everything), the preferences page and the link to their
data. What admins do to subscribers is in admin_actions.py; the consent log each step
appends to is consent.py."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.content import newsletters as newsletter_list
from newsletter.content.models import Newsletter
from newsletter.core import i18n, settings, suppression, tokens
from newsletter.core.addresses import InvalidSignup, clean_name, normalize_email
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending.hints import commit_owing_jobs, hint_email_jobs
from newsletter.sending.models import EmailJob, EmailKind, JobStatus
from newsletter.subscribers import blocked_domains
from newsletter.subscribers.consent import log_consent, log_signup
from newsletter.subscribers.models import ConsentKind, Subscriber, SubscriberStatus
from newsletter.webhooks import outgoing

# Addresses a sign-up form never sends a confirmation to: confirmed already, or
# refused by their mail system, or whose owner reported us as spam.
NEVER_AGAIN_BY_FORM = (
    SubscriberStatus.CONFIRMED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
)


class LinkNotValid(Exception):
    """A genuine link whose subscription is gone or was replaced."""


class CodeNotValid(Exception):
    """A confirmation code that is wrong, expired or out of tries, or for no pending
    subscription."""


@dataclass(frozen=True)
class Signup:
    address: str
    name: str
    source: str
    ip: str | None
    # The newsletters chosen; None: those on by default.
    newsletter_ids: list[int] | None
    # The language the subscriber's browser asked for (i18n.LANGUAGES); None: the default.
    locale: str | None = None


def subscribe(
    email: str,
    name: str = "",
    source: str = "form",
    ip: str | None = None,
    newsletters: list[str] | None = None,
    locale: str | None = None,
) -> None:
    """Record a sign-up and owe the subscriber a confirmation email, which covers the
    ``newsletters`` chosen (slugs; None: those on by default) and speaks ``locale``
    (one of i18n.LANGUAGES; None: the default).

    The caller answers the same whatever happens here, so nobody can learn who
    subscribes. A confirmed address gets no new link and keeps its choice (the
    preferences page changes it); a pending one gets a fresh link (at most one per
    CONFIRM_RESEND_INTERVAL); a former subscriber starts over.
    """
    address = normalize_email(email)
    blocked_domains.refuse_if_disposable(address)
    signup = Signup(
        address,
        clean_name(name),
        source,
        ip,
        newsletter_list.chosen_ids(newsletters),
        i18n.supported(locale),
    )
    owes = _record_new_address(signup)
    if owes is None:
        blocked_domains.refuse_if_blocked(address)
        owes = _record_known_address(signup)
    if not owes:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()


# Core statements on the tables, built once: the ORM's bulk path costs more than the
# INSERT itself, and a dialect's INSERT … ON CONFLICT is compiled anew every time.
_SIGNUP_COLUMNS = ("email", "name", "signup_source", "signup_ip", "locale")
# An address erased at its owner's request is never added again (and the answer is
# the same), nor one at a domain the admins block: one statement checks both and adds
# the address.
_NEW_SUBSCRIBER = (
    insert(Subscriber.__table__)
    .from_select(
        _SIGNUP_COLUMNS,
        select(*(bindparam(column) for column in _SIGNUP_COLUMNS)).where(
            suppression.NOT_SUPPRESSED, blocked_domains.NOT_BLOCKED
        ),
    )
    .returning(Subscriber.__table__.c.id)
)
_NEW_JOB = insert(EmailJob.__table__)


def _record_new_address(signup: Signup) -> bool | None:
    """The common case, a new address, in four INSERTs: the subscriber, its choice of
    newsletters, its confirmation job and its consent, left for the caller to commit.
    False when the address was erased, None when it is known; InvalidSignup when its
    domain is blocked."""
    address, source, ip = signup.address, signup.source, signup.ip
    connection = db.session.connection()
    try:
        subscriber_id = connection.execute(
            _NEW_SUBSCRIBER,
            {
                "email": address,
                "name": signup.name,
                "signup_source": source,
                "signup_ip": ip,
                "locale": signup.locale,
                "hashes": suppression.address_hashes(address),
                "domains": blocked_domains.domains_of(address),
            },
        ).scalar()
    except IntegrityError:
        db.session.rollback()
        return None
    if subscriber_id is None:
        blocked_domains.refuse_if_blocked(address)
        return False
    newsletter_list.join_new_subscriber(connection, subscriber_id, signup.newsletter_ids)
    connection.execute(_NEW_JOB, {"kind": EmailKind.CONFIRMATION, "subscriber_id": subscriber_id})
    log_signup(connection, subscriber_id, source, ip)
    return True


def _record_known_address(signup: Signup) -> bool:
    """A sign-up from an address we know, left for the caller to commit; True if it
    owes a confirmation email."""
    try:
        return _record_signup(signup)
    except IntegrityError:
        # The same address signed up at the same moment in another request.
        db.session.rollback()
        return _record_signup(signup)


def _record_signup(signup: Signup) -> bool:
    address, name, source, ip = signup.address, signup.name, signup.source, signup.ip
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = Subscriber(
            email=address, name=name, signup_source=source, signup_ip=ip, locale=signup.locale
        )
        db.session.add(subscriber)
        db.session.flush()
    elif subscriber.status in NEVER_AGAIN_BY_FORM:
        return False
    else:
        if subscriber.status != SubscriberStatus.PENDING:
            subscriber.status = SubscriberStatus.PENDING
            subscriber.unsubscribed_at = None
            subscriber.confirmed_at = None
        subscriber.name = name or subscriber.name
        subscriber.signup_at = utcnow()
        subscriber.signup_source = source
        subscriber.signup_ip = ip
        subscriber.locale = signup.locale or subscriber.locale
    newsletter_list.choose(
        subscriber.id, signup.newsletter_ids, only=signup.newsletter_ids is not None
    )
    log_consent(subscriber.id, ConsentKind.SIGNUP, source, ip)
    if owe_confirmation(subscriber) is None:
        return False
    # A new email, a new allowance of codes (emails per day are capped, and so are guesses).
    subscriber.code_attempts = 0
    return True


def owe_confirmation(subscriber: Subscriber) -> EmailJob | None:
    """The confirmation job to send for a pending subscriber, or None if one went out just now.

    A job still waiting its turn is reused: its email will carry a fresh link
    anyway, because the token is made when the email is built. A job a worker is
    sending right now counts as sent.
    """
    return _owe(subscriber, EmailKind.CONFIRMATION)


def _owe(subscriber: Subscriber, kind: EmailKind) -> EmailJob | None:
    """A job of ``kind`` for the subscriber, within CONFIRM_RESEND_INTERVAL and
    CONFIRM_MAX_PER_DAY (None: one went out just now, or enough went out today),
    left for the caller to commit. Whoever asks, the mailbox gets no more than that."""
    now = utcnow()
    open_jobs = db.session.scalars(
        select(EmailJob).where(
            EmailJob.subscriber_id == subscriber.id,
            EmailJob.kind == kind,
            EmailJob.status == JobStatus.QUEUED,
        )
    ).all()
    waiting = [job for job in open_jobs if job.lease_until is None or job.lease_until < now]
    if waiting:
        return waiting[0]
    interval = timedelta(seconds=current_app.config["CONFIRM_RESEND_INTERVAL"])
    recently_sent = db.session.scalar(
        select(EmailJob.id).where(
            EmailJob.subscriber_id == subscriber.id,
            EmailJob.kind == kind,
            EmailJob.status == JobStatus.SENT,
            EmailJob.finished_at > now - interval,
        )
    )
    if (open_jobs or recently_sent) and interval:
        return None
    sent_today = db.session.scalar(
        select(func.count(EmailJob.id)).where(
            EmailJob.subscriber_id == subscriber.id,
            EmailJob.kind == kind,
            EmailJob.created_at > now - timedelta(days=1),
        )
    )
    if sent_today >= current_app.config["CONFIRM_MAX_PER_DAY"]:
        return None
    job = EmailJob(kind=kind, subscriber=subscriber)
    db.session.add(job)
    db.session.flush()
    return job


def _subscriber_for(nonce: str) -> Subscriber:
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.token_nonce == nonce))
    if subscriber is None:
        raise LinkNotValid()
    return subscriber


def check_confirmation(token: str) -> Subscriber:
    """The subscriber a confirmation link is for.

    Raises TokenExpired, TokenInvalid or LinkNotValid.
    """
    return _subscriber_for(
        tokens.read_token(tokens.CONFIRM, token, max_age=current_app.config["CONFIRM_MAX_AGE"])
    )


def confirm(token: str, ip: str | None = None) -> Subscriber:
    """Confirm the subscription a link was made for, and owe the subscriber a welcome email
    (when admins keep it on). Confirming twice is harmless.

    A subscription that was cancelled after the link was sent stays cancelled.
    """
    return _confirm(check_confirmation(token), ip, source="link")


def confirm_with_code(email: str, code: str, ip: str | None = None) -> Subscriber:
    """Confirm a subscription with the code from its confirmation email, typed on the
    "check your email" page. Each try counts, right or wrong; after
    CONFIRM_CODE_ATTEMPTS the code stops working until a new confirmation email is
    owed. Raises CodeNotValid, the same for every reason, so that the page tells
    nobody whether an address is known."""
    try:
        address = normalize_email(email)
    except InvalidSignup:
        raise CodeNotValid() from None
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
    max_age = timedelta(seconds=current_app.config["CONFIRM_MAX_AGE"])
    if (
        subscriber is None
        or subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED)
        or subscriber.signup_at < utcnow() - max_age
    ):
        raise CodeNotValid()
    allowed = rows_changed(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber.id,
            Subscriber.code_attempts < current_app.config["CONFIRM_CODE_ATTEMPTS"],
        )
        .values(code_attempts=Subscriber.code_attempts + 1)
    )
    db.session.commit()
    code = "".join((code or "").split())
    if not (allowed and tokens.code_matches(code, subscriber.id, subscriber.token_nonce)):
        raise CodeNotValid()
    return _confirm(subscriber, ip, source="code")


def _confirm(subscriber: Subscriber, ip: str | None, source: str) -> Subscriber:
    if subscriber.status == SubscriberStatus.PENDING:
        subscriber.status = SubscriberStatus.CONFIRMED
        subscriber.confirmed_at = utcnow()
        subscriber.confirm_ip = ip
        log_consent(subscriber.id, ConsentKind.CONFIRM, source, ip)
        outgoing.subscriber_changed(subscriber)
        welcome = settings.current().welcome_enabled
        if welcome:
            db.session.add(EmailJob(kind=EmailKind.WELCOME, subscriber=subscriber))
        if not welcome:
            db.session.commit()
        elif commit_owing_jobs():
            hint_email_jobs()
    elif subscriber.status != SubscriberStatus.CONFIRMED:
        raise LinkNotValid()
    return subscriber


def renew_confirmation(token: str) -> None:
    """Owe a fresh confirmation link in place of an expired one."""
    try:
        nonce = tokens.read_token(tokens.CONFIRM, token)
    except tokens.TokenExpired as expired:
        nonce = expired.nonce
    subscriber = _subscriber_for(nonce)
    if subscriber.status != SubscriberStatus.PENDING:
        return
    if owe_confirmation(subscriber) is None:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()


@dataclass(frozen=True)
class UnsubscribeLink:
    """What an unsubscribe link is for: a subscriber and the newsletter whose email carried
    it. None for a link from an email of no newsletter (confirmation, welcome, the
    preferences page) or made before links named one: it leaves everything."""

    subscriber: Subscriber
    newsletter: Newsletter | None
    issued_at: datetime


def check_unsubscribe(token: str) -> UnsubscribeLink:
    """What an unsubscribe link is for; raises TokenInvalid or LinkNotValid."""
    link = tokens.read_link(tokens.UNSUBSCRIBE, token)
    subscriber = _subscriber_for(link.nonce)
    # A newsletter deleted since: the link leaves everything, the safe side for the subscriber.
    newsletter = db.session.get(Newsletter, link.newsletter_id) if link.newsletter_id else None
    return UnsubscribeLink(subscriber, newsletter, link.issued_at)


def unsubscribe(
    token: str, ip: str | None = None, everything: bool = False, source: str = "link"
) -> UnsubscribeLink:
    """Stop the mail a link was made for: its newsletter's, or all of it with
    ``everything`` or when it names none. Idempotent. Returns what was left (its
    ``newsletter`` None: everything)."""
    link = check_unsubscribe(token)
    if everything or link.newsletter is None:
        stop_mail(link.subscriber, source, ip)
        link = replace(link, newsletter=None)
    else:
        _leave(link.subscriber, link.newsletter, source, ip)
    db.session.commit()
    return link


def unsubscribe_known(subscriber: Subscriber, newsletter_id: int | None, source: str) -> bool:
    """What an unsubscribe link does, for a subscriber already known by a signed name (the
    mailto address): off that newsletter (None, or one deleted since: everything), in
    the caller's transaction; whether anything changed."""
    newsletter = db.session.get(Newsletter, newsletter_id) if newsletter_id else None
    if newsletter is None:
        return stop_mail(subscriber, source)
    return _leave(subscriber, newsletter, source, None)


def stop_mail(subscriber: Subscriber, source: str, ip: str | None = None) -> bool:
    """Unsubscribe a subscriber who still gets mail, in the caller's transaction; whether
    anything changed."""
    if subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = utcnow()
    log_consent(subscriber.id, ConsentKind.UNSUBSCRIBE, source, ip)
    outgoing.subscriber_changed(subscriber)
    return True


def _leave(subscriber: Subscriber, newsletter: Newsletter, source: str, ip: str | None) -> bool:
    """Take a subscriber who still gets mail off one newsletter, in the caller's
    transaction; whether anything changed.

    Off their last one, they are unsubscribed: they get no more mail, not even a
    newsletter added later, and their preferences page offers "Subscribe again", which
    turns the newsletters on by default on again."""
    if subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
        return False
    if not newsletter_list.leave(subscriber.id, newsletter.id):
        return False
    if newsletter_list.chosen_by(subscriber.id):
        log_consent(subscriber.id, ConsentKind.LEAVE, source, ip, newsletter.id)
    else:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = utcnow()
        log_consent(subscriber.id, ConsentKind.UNSUBSCRIBE, source, ip, newsletter.id)
    outgoing.newsletter_left(subscriber, newsletter.slug)
    return True


def preferences_token_for(link: UnsubscribeLink) -> str | None:
    """A preferences link for the page an unsubscribe link leads to, or None when the
    unsubscribe link is older than a preferences link may be: unsubscribe links never
    expire, and must not hand out what expires. The link it makes opens no data
    (tokens.PREFERENCES_FROM_UNSUBSCRIBE): the unsubscribe link may have been forwarded."""
    max_age = timedelta(seconds=current_app.config["PREFERENCES_MAX_AGE"])
    if datetime.now(UTC) - link.issued_at > max_age:
        return None
    return tokens.make_token(tokens.PREFERENCES_FROM_UNSUBSCRIBE, link.subscriber)


class DataNeedsEmailedLink(Exception):
    """A preferences link made on the unsubscribe page cannot download or erase data."""


def check_preferences(token: str, data: bool = False) -> Subscriber:
    """The subscriber a preferences link is for; raises TokenExpired (each digest
    carries a fresh link, so an old one may stop working), TokenInvalid or LinkNotValid.
    For the subscriber's ``data`` (download, erase) only a link that came by email will do:
    one made on the unsubscribe page raises DataNeedsEmailedLink."""
    max_age = current_app.config["PREFERENCES_MAX_AGE"]
    try:
        nonce = tokens.read_token(tokens.PREFERENCES, token, max_age=max_age)
    except tokens.TokenInvalid:
        nonce = tokens.read_token(tokens.PREFERENCES_FROM_UNSUBSCRIBE, token, max_age=max_age)
        if data:
            raise DataNeedsEmailedLink() from None
    return _subscriber_for(nonce)


# Who may be sent a link to their data: unsubscribed subscribers too (it answers their own
# request, it is no newsletter), never an address that bounced or complained.
DATA_LINK_STATUSES = (
    SubscriberStatus.PENDING,
    SubscriberStatus.CONFIRMED,
    SubscriberStatus.UNSUBSCRIBED,
)


def email_data_link(token: str) -> Subscriber:
    """Owe the subscriber a preferences link that opens their data, by email to their own
    address: the way to their data for a subscriber whose link came from an unsubscribe link
    and who gets no more digests. At most one per CONFIRM_RESEND_INTERVAL and
    CONFIRM_MAX_PER_DAY a day, whoever presses the button.

    The caller answers the same whatever happens here (sent, limited, or an address we
    may not mail), so the answer tells nothing about the subscriber. Returns the subscriber."""
    subscriber = check_preferences(token)
    if subscriber.status not in DATA_LINK_STATUSES or suppression.suppressed([subscriber.email]):
        return subscriber
    if _owe(subscriber, EmailKind.DATA_LINK) is None:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()
    return subscriber


def link_opens_data(token: str) -> bool:
    """Whether a preferences link (checked already) came by email, and so may download
    and erase the subscriber's data."""
    try:
        tokens.read_token(tokens.PREFERENCES, token)
    except (tokens.TokenInvalid, tokens.TokenExpired):
        return False
    return True


def update_preferences(
    token: str,
    name: str,
    resubscribe: bool = False,
    ip: str | None = None,
    newsletters: list[str] | None = None,
    locale: str | None = None,
) -> Subscriber:
    """Change the subscriber's name and, when ``newsletters`` (slugs) is given, exactly which
    newsletters they get, and when ``locale`` is, the language of their emails; with
    ``resubscribe``, owe a confirmation email, whose button starts their mail again:
    whoever holds an old link is not the mailbox."""
    subscriber = check_preferences(token)
    if locale is not None and i18n.supported(locale) is None:
        raise InvalidSignup(_l("Please choose one of the languages offered."))
    subscriber.name = clean_name(name)
    # Choosing the language one gets already changes nothing: a subscriber who never chose
    # keeps following DEFAULT_LOCALE.
    if locale is not None and i18n.supported(locale) != i18n.subscriber_locale(subscriber.locale):
        subscriber.locale = i18n.supported(locale)
    if newsletters is not None:
        chosen = newsletter_list.chosen_ids(newsletters) if newsletters else []
        _choose_on_preferences(subscriber, chosen, ip)
    if not resubscribe or subscriber.status == SubscriberStatus.CONFIRMED:
        db.session.commit()
        return subscriber
    _subscribe_again(subscriber, ip)
    return subscriber


def refuse_tracking(subscriber: Subscriber, refused: bool) -> None:
    """The subscriber's "don't track me": their opens and clicks are then counted with no
    name on them, whatever their newsletters' tracking (engagement)."""
    subscriber.tracking_refused = refused
    db.session.commit()


def _choose_on_preferences(subscriber: Subscriber, chosen: list[int], ip: str | None) -> None:
    """Give a subscriber exactly the newsletters they ticked, logging each one they join or
    leave, in the caller's transaction. Unticking every one is unsubscribing, as leaving
    the last one by its email's link is."""
    before = newsletter_list.chosen_by(subscriber.id)
    newsletter_list.choose(subscriber.id, chosen, only=True)
    if subscriber.status != SubscriberStatus.CONFIRMED:
        return
    for newsletter_id in sorted(set(chosen) - before):
        log_consent(subscriber.id, ConsentKind.JOIN, "preferences", ip, newsletter_id)
    if before and not chosen:
        stop_mail(subscriber, "preferences", ip)
        return
    for newsletter_id in sorted(before - set(chosen)):
        log_consent(subscriber.id, ConsentKind.LEAVE, "preferences", ip, newsletter_id)
        outgoing.newsletter_left(subscriber, db.session.get_one(Newsletter, newsletter_id).slug)


def _subscribe_again(subscriber: Subscriber, ip: str | None) -> None:
    """Owe a subscriber who asked on their preferences page a confirmation email, and commit."""
    blocked_domains.refuse_if_blocked(subscriber.email)
    # A subscriber who left their last newsletter comes back to those on by default.
    newsletter_list.choose(subscriber.id, None)
    subscriber.status = SubscriberStatus.PENDING
    subscriber.signup_at = utcnow()
    subscriber.signup_source = "preferences"
    subscriber.signup_ip = ip
    subscriber.unsubscribed_at = subscriber.confirmed_at = None
    subscriber.hard_bounces = 0
    log_consent(subscriber.id, ConsentKind.SIGNUP, "preferences", ip)
    if owe_confirmation(subscriber) is None:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()
