"""What admins do to subscribers: list and search them, count them per status, import
and export them as CSV, add and edit one from the admins' API, unsubscribe or resend
confirmations in bulk, and lift a suppression."""

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import delete, exists, false, func, insert, or_, select

from newsletter.content import newsletters as newsletter_list
from newsletter.content.models import Newsletter, Subscription
from newsletter.core import suppression
from newsletter.core.addresses import InvalidSignup, clean_name, normalize_email
from newsletter.core.models import SuppressedAddress, utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending.hints import commit_owing_jobs, hint_email_jobs
from newsletter.subscribers import blocked_domains, consent, lifecycle
from newsletter.subscribers.models import ConsentKind, Subscriber, SubscriberStatus, SubscriberTally

IMPORT_BATCH_SIZE = 1000
# Rejected rows are all counted; only this many are kept with their reasons.
REJECTIONS_KEPT = 1000
EXPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "signup_at",
    "signup_source",
    "signup_ip",
    "confirmed_at",
    "unsubscribed_at",
)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(ValueError):
    """The file cannot be read as a subscriber CSV at all."""


class AlreadyKnown(ValueError):
    """The address is a subscriber already; the message names it."""


@dataclass
class ImportReport:
    added: int = 0
    skipped: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < REJECTIONS_KEPT:
            self.rejections.append((line, reason))


# Tally rows summed at most on each read: past this many they are folded into one a status.
TALLY_FOLD_AT = 500


def status_counts() -> dict[str, int]:
    """Subscribers per status, every status present (zero when none).

    Exact: the sums of the changes the database's triggers append to SubscriberTally
    with each change of a subscriber, instead of reading every subscriber."""
    rows = (
        db.session.execute(
            select(SubscriberTally.status, func.sum(SubscriberTally.delta), func.count()).group_by(
                SubscriberTally.status
            )
        )
        .tuples()
        .all()
    )
    if sum(kept for _status, _total, kept in rows) > TALLY_FOLD_AT:
        fold_tally()
    counts = {status: int(total) for status, total, _kept in rows}
    return {status.value: counts.get(status.value, 0) for status in SubscriberStatus}


def fold_tally() -> None:
    """Replace the tally's rows by one a status, in a transaction of its own. The rows
    it deletes are the very ones it sums, so a change committed meanwhile is kept, and
    two folds at once count each row once."""
    with db.engine.begin() as connection:
        removed = connection.execute(
            delete(SubscriberTally).returning(SubscriberTally.status, SubscriberTally.delta)
        )
        totals: Counter[str] = Counter()
        for status, delta in removed:
            totals[status] += delta
        folded = [{"status": status, "delta": total} for status, total in totals.items() if total]
        if folded:
            connection.execute(insert(SubscriberTally), folded)


LAST_PAGE = 10**9
# The longest address SMTP allows; names are shorter.
SEARCH_MAX_LENGTH = 320
SEARCH_COUNT_LIMIT = 10_000
# Subscribers on a page of the admin's list.
LIST_PAGE_SIZE = 50


@dataclass
class Listing:
    """One page of subscribers, newest first, and where the pages beside it start:
    ``before=newer`` lists the newer page, ``after=older`` the older one (None: no such
    page). ``total`` is a floor when ``more_than``."""

    items: Sequence[Subscriber]
    total: int
    more_than: bool
    newer: int | None
    older: int | None


def _matching(statement, query, status, newsletter_id=None):
    """``statement`` kept to the subscribers with ``status`` (any if empty) whose address
    or name contains ``query`` (and, given ``newsletter_id``, with that newsletter on)."""
    query = query.strip().lower()
    if "\x00" in query or len(query) > SEARCH_MAX_LENGTH:
        # No stored text holds a NUL (PostgreSQL cannot even compare with one), nor is
        # longer than an address (SQLite refuses a LIKE pattern of 50,000 bytes).
        statement = statement.where(false())
    elif query:
        statement = statement.where(
            or_(
                Subscriber.email.contains(query, autoescape=True),
                func.lower(Subscriber.name).contains(query, autoescape=True),
            )
        )
    if status:
        statement = statement.where(Subscriber.status == status)
    if newsletter_id is not None:
        statement = statement.where(_reads(newsletter_id))
    return statement


def _reads(newsletter_id):
    """The subscriber has the newsletter on."""
    return exists().where(
        Subscription.subscriber_id == Subscriber.id,
        Subscription.newsletter_id == newsletter_id,
        Subscription.active.is_(True),
    )


def _counted_up_to_limit(statement):
    """How many ``statement`` matches, counted up to SEARCH_COUNT_LIMIT: counting every
    match of a broad search would read most of the table. Returns (total, more_than)."""
    counted = statement.limit(SEARCH_COUNT_LIMIT + 1)
    total = db.session.scalar(select(func.count()).select_from(counted.subquery()))
    return total, total > SEARCH_COUNT_LIMIT


def search(query="", status="", page=1, per_page=50, newsletter_id=None):
    """One page of subscribers by number, newest first, matching part of an address or
    name (and, given ``newsletter_id``, with that newsletter on): the admins' API's list.

    The total of a list kept to a status at most comes from status_counts: counting it
    would read the whole table."""
    # A page far past any list's end is empty, and its OFFSET still fits a BIGINT.
    page = min(max(page, 1), LAST_PAGE)
    statement = _matching(select(Subscriber), query, status, newsletter_id)
    statement = statement.order_by(Subscriber.id.desc())
    listed = db.paginate(statement, page=page, per_page=per_page, error_out=False, count=False)
    listed.more_than = False
    if query.strip():
        listed.total, listed.more_than = _counted_up_to_limit(statement)
    elif newsletter_id is not None:
        listed.total = db.session.scalar(select(func.count()).select_from(statement.subquery()))
    else:
        counts = status_counts()
        listed.total = counts[status] if status else sum(counts.values())
    return listed


def browse(
    query="", status="", after=None, before=None, counts=None, newsletter_id=None
) -> Listing:
    """The admin's list: the page of subscribers just older than id ``after``, or just
    newer than id ``before``, or the newest, matching part of an address or name (and,
    given ``newsletter_id``, with that newsletter on).

    A place in the list, unlike a page number, is found in the primary key's index:
    a page 100,000 rows down costs what the first does, where an OFFSET reads every
    row before it. ``counts`` (status_counts) give the total of a list kept to a status
    at most; any other is counted up to SEARCH_COUNT_LIMIT, unless it fits on a page."""
    per_page = LIST_PAGE_SIZE
    matching = _matching(select(Subscriber), query, status, newsletter_id)
    tallied = not query.strip() and newsletter_id is None
    if before is not None:
        rows = db.session.scalars(
            matching.where(Subscriber.id > before).order_by(Subscriber.id).limit(per_page + 1)
        ).all()
        if len(rows) > per_page:
            items = rows[per_page - 1 :: -1]
            total, more_than = _total(matching, status, counts, tallied)
            return Listing(items, total, more_than, newer=items[0].id, older=items[-1].id)
        # Nothing newer than this page: it is the newest, as full as the first page is.
        after = None
    newest_first = matching.order_by(Subscriber.id.desc())
    if after is not None:
        newest_first = newest_first.where(Subscriber.id < after)
    rows = db.session.scalars(newest_first.limit(per_page + 1)).all()
    items = rows[:per_page]
    older = items[-1].id if len(rows) > per_page else None
    if after is None and older is None and not tallied:
        # The whole result is on this page: no need to count it.
        return Listing(items, len(items), False, newer=None, older=None)
    total, more_than = _total(matching, status, counts, tallied)
    # A page older than ``after`` has a newer one; past the end, it starts at ``after``.
    newer = None if after is None else (items[0].id if items else after - 1)
    return Listing(items, total, more_than, newer=newer, older=older)


def _total(matching, status, counts, tallied):
    """(total, more_than) of a listing: from the status counts if they can tell."""
    if not tallied:
        return _counted_up_to_limit(matching)
    counts = counts if counts is not None else status_counts()
    return (counts[status] if status else sum(counts.values())), False


def export_rows():
    """The CSV export, one line at a time, without loading every subscriber at once."""
    yield _csv_line(EXPORT_COLUMNS)
    rows = db.session.execute(
        select(*(getattr(Subscriber, column) for column in EXPORT_COLUMNS))
        .order_by(Subscriber.id)
        .execution_options(yield_per=1000)
    )
    for row in rows:
        yield _csv_line("" if value is None else value for value in row)


def _csv_line(values):
    buffer = io.StringIO()
    csv.writer(buffer).writerow(_defuse(value) for value in values)
    return buffer.getvalue()


def _defuse(value):
    """Keep spreadsheets from running a name like ``=HYPERLINK(…)`` as a formula."""
    text = str(value)
    return f"'{text}" if text[:1] in FORMULA_PREFIXES else text


def import_subscribers(file: TextIO, confirmed: bool = False) -> ImportReport:
    """Add the subscribers in a CSV file (an ``email`` column, optionally ``name``).

    Rows are read and written in batches, so a file of any size takes little
    memory. Addresses already known are skipped and never changed; bad rows are
    reported with their line numbers. With ``confirmed`` the new subscribers are
    confirmed at once, their consent recorded as coming from an import. A file
    that cannot be read to its end is refused before any row is added.
    """
    _refuse_unreadable(file)
    file.seek(0)
    csv_rows = csv.DictReader(file)
    columns = {(name or "").strip().lower(): name for name in csv_rows.fieldnames or []}
    if "email" not in columns:
        raise ImportFileError("The CSV needs a header row with an 'email' column.")
    report = ImportReport()
    batch = {}
    for line, email, name in _valid_rows(csv_rows, columns, report):
        if email in batch:
            report.skipped += 1
            continue
        batch[email] = (line, name)
        if len(batch) >= IMPORT_BATCH_SIZE:
            _add_batch(batch, confirmed, report)
            batch = {}
    _add_batch(batch, confirmed, report)
    # Rows at blocked domains are found a batch at a time, after the batch's other rejections.
    report.rejections.sort()
    return report


def _refuse_unreadable(file: TextIO) -> None:
    """Read the whole file as CSV, storing nothing: an error in its last line must not
    leave the rows before it imported and the admin unsure which."""
    csv_rows = csv.reader(file)
    try:
        for _row in csv_rows:
            pass
    except UnicodeDecodeError:
        raise ImportFileError(
            f"Line {_first_line_not_utf8(file)} is not UTF-8 text (save the file as CSV UTF-8); "
            "nothing was imported."
        ) from None
    except csv.Error as error:
        raise ImportFileError(f"Line {csv_rows.line_num}: {error}; nothing was imported.") from None


def _first_line_not_utf8(file: TextIO) -> int:
    """The decoder reads ahead in chunks, so its error does not say which line; the bytes do."""
    file.buffer.seek(0)
    for number, raw in enumerate(file.buffer, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 1


def _valid_rows(csv_rows, columns, report):
    """(line, address, name) of each usable row; the others are reported with their line."""
    for row in csv_rows:
        try:
            email = normalize_email(row.get(columns["email"]))
            name = clean_name(row.get(columns.get("name", ""), ""))
        except InvalidSignup as error:
            report.reject(csv_rows.line_num, str(error))
            continue
        yield csv_rows.line_num, email, name


def _log_imported(emails, confirmed, now, source):
    """The consent log of imported subscribers (their consent came with the file), and
    their choice: the newsletters on by default."""
    kinds = [ConsentKind.SIGNUP, ConsentKind.CONFIRM] if confirmed else [ConsentKind.SIGNUP]
    ids = list(db.session.scalars(select(Subscriber.id).where(Subscriber.email.in_(emails))))
    defaults = list(
        db.session.scalars(select(Newsletter.id).where(Newsletter.default_on.is_(True)))
    )
    if defaults:
        db.session.execute(
            insert(Subscription),
            [
                {"subscriber_id": subscriber_id, "newsletter_id": newsletter_id, "changed_at": now}
                for subscriber_id in ids
                for newsletter_id in defaults
            ],
        )
    consent.log_many(ids, kinds, source, now)


def _reject_blocked(batch, report):
    """Take the rows at a blocked domain out of the batch, rejected with the reason a
    sign-up from them would get: one lookup for the whole batch."""
    domains = {email: blocked_domains.domain_of(email) for email in batch}
    refused = blocked_domains.blocked(domains.values())
    for email, domain in domains.items():
        if domain in refused:
            line, _name = batch.pop(email)
            report.reject(line, str(blocked_domains.refusal(email)))


def _add_batch(batch, confirmed, report, source="import"):
    """Add a batch of {address: (line, name)}, in one transaction, their consent
    recorded as coming from ``source``."""
    _reject_blocked(batch, report)
    if not batch:
        return
    known = set(db.session.scalars(select(Subscriber.email).where(Subscriber.email.in_(batch))))
    # Addresses erased at their owners' request count as known: never added again.
    known |= suppression.suppressed(list(batch))
    now = utcnow()
    status = SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING
    rows = [
        {
            "email": email,
            "name": name,
            "status": status,
            "signup_at": now,
            "signup_source": source,
            "confirmed_at": now if confirmed else None,
        }
        for email, (_line, name) in batch.items()
        if email not in known
    ]
    if rows:
        db.session.execute(insert(Subscriber), rows)
        _log_imported([row["email"] for row in rows], confirmed, now, source)
    db.session.commit()
    report.added += len(rows)
    report.skipped += len(known)


def add_subscriber(
    email: str,
    name: str,
    consent_source: str,
    confirmed: bool,
    newsletters: list[str] | None = None,
) -> Subscriber:
    """Add one subscriber whose consent an admin's system recorded at ``consent_source``,
    to the ``newsletters`` named (slugs; None: those on by default).

    Confirmed, they are added as a CSV import adds them, consent logged; otherwise they
    sign up as from a form and are owed a confirmation email. Unlike a public sign-up
    this tells the admin why an address was not added: AlreadyKnown, or InvalidSignup
    (an erased address, a blocked domain, a bad address or name, no such newsletter)."""
    address = normalize_email(email)
    name = clean_name(name)
    chosen = newsletter_list.chosen_ids(newsletters)
    known = db.session.scalar(select(Subscriber.id).where(Subscriber.email == address))
    if known is not None:
        raise AlreadyKnown(f"{address} is subscriber {known} already.")
    if suppression.suppressed([address]):
        raise InvalidSignup("This address was erased at its owner's request: never added again.")
    if confirmed:
        report = ImportReport()
        _add_batch({address: (1, name)}, confirmed=True, report=report, source=consent_source)
        if report.rejections:
            raise InvalidSignup(report.rejections[0][1])
    else:
        lifecycle.subscribe(address, name, source=consent_source, newsletters=newsletters)
    added = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
    if added is None:
        # Erased or blocked between the checks above and the insert.
        raise InvalidSignup("This address cannot be added.")
    if confirmed and chosen is not None:
        # Added as an import adds them, to the newsletters on by default: their own
        # choice replaces those, which they never had.
        db.session.execute(delete(Subscription).where(Subscription.subscriber_id == added.id))
        newsletter_list.choose(added.id, chosen)
        db.session.commit()
    return added


def edit_subscriber(
    subscriber: Subscriber,
    name: str | None,
    unsubscribe: bool,
    newsletters: list[str] | None = None,
) -> None:
    """Rename a subscriber, set exactly which ``newsletters`` (slugs) they get, and stop
    their mail if asked. Only unsubscribing is offered: confirming is the subscriber's own
    act, and a bounced or complaining address stays so. InvalidSignup changes nothing."""
    chosen = newsletter_list.chosen_ids(newsletters) if newsletters else []
    if name is not None:
        subscriber.name = clean_name(name)
    if newsletters is not None:
        newsletter_list.choose(subscriber.id, chosen, only=True)
    if unsubscribe:
        lifecycle.stop_mail(subscriber, "api")
    db.session.commit()


def unsubscribe_by_admin(subscriber_ids: list[int]) -> int:
    """Unsubscribe subscribers at an admin's hand (a request by phone, by mail); how many
    were still getting mail."""
    subscribers = db.session.scalars(select(Subscriber).where(Subscriber.id.in_(subscriber_ids)))
    changed = sum(lifecycle.stop_mail(subscriber, "admin") for subscriber in subscribers)
    db.session.commit()
    return changed


def resend_confirmation(subscriber_ids: list[int]) -> int:
    """Owe pending subscribers a fresh confirmation email, within the same limits as the
    form (CONFIRM_RESEND_INTERVAL, CONFIRM_MAX_PER_DAY); how many are owed one."""
    subscribers = db.session.scalars(
        select(Subscriber).where(
            Subscriber.id.in_(subscriber_ids), Subscriber.status == SubscriberStatus.PENDING
        )
    ).all()
    owed = 0
    for subscriber in subscribers:
        if lifecycle.owe_confirmation(subscriber) is not None:
            # A new email, a new allowance of codes, as at sign-up.
            subscriber.code_attempts = 0
            owed += 1
    if not owed:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()
    return owed


class NotSuppressed(ValueError):
    """An address that nothing keeps from being mailed: there is nothing to lift."""


# The consent log's source for a sign-up an admin started by lifting a suppression.
LIFTED_SOURCE = "admin-lifted"


def _unsuppress(address: str) -> int:
    """Take the address's hashes (under every key that verifies) off the suppression
    list, in the caller's transaction; how many there were."""
    return rows_changed(
        delete(SuppressedAddress).where(
            SuppressedAddress.address_hash.in_(suppression.address_hashes(address))
        )
    )


def is_suppressed(subscriber: Subscriber) -> bool:
    """Whether the subscriber is kept from mail by a bounce, a complaint or the
    suppression list: what ``lift_suppression`` lifts."""
    stopped = subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
    return stopped or bool(suppression.suppressed([subscriber.email]))


def lift_suppression(subscriber: Subscriber) -> bool:
    """Allow a bounced, complained or suppressed subscriber's address again, at an admin's
    hand. Nothing is mailed to them but a fresh confirmation email: they start over as
    pending, their bounces forgotten, and get digests only once they confirm (a
    mistaken bounce is no consent to mail an address that may now be somebody else's).
    Raises NotSuppressed; whether a confirmation email is owed (within the form's
    limits)."""
    lifted = _unsuppress(subscriber.email)
    if not lifted and subscriber.status not in (
        SubscriberStatus.BOUNCED,
        SubscriberStatus.COMPLAINED,
    ):
        raise NotSuppressed(f"{subscriber.email} is not suppressed: nothing to lift.")
    now = utcnow()
    subscriber.status = SubscriberStatus.PENDING
    subscriber.signup_at = now
    subscriber.signup_source = LIFTED_SOURCE
    subscriber.signup_ip = subscriber.unsubscribed_at = subscriber.confirmed_at = None
    subscriber.hard_bounces = subscriber.code_attempts = 0
    subscriber.soft_bounces_cleared_at = now
    consent.log_consent(subscriber.id, ConsentKind.SIGNUP, LIFTED_SOURCE, None)
    owed = lifecycle.owe_confirmation(subscriber) is not None
    if not owed:
        db.session.commit()
    elif commit_owing_jobs():
        hint_email_jobs()
    return owed


def lift_erased_address(email: str) -> None:
    """Allow an address that was erased (no subscriber is left to show) again, at an admin's
    hand: it signs up afresh, owed a confirmation email, as from a form. Raises
    InvalidSignup or NotSuppressed."""
    address = normalize_email(email)
    if db.session.scalar(select(Subscriber.id).where(Subscriber.email == address)):
        raise NotSuppressed(f"{address} is a reader: lift it on the reader's page.")
    if not _unsuppress(address):
        db.session.rollback()
        raise NotSuppressed(f"{address} is not suppressed: nothing to lift.")
    lifecycle.subscribe(address, source=LIFTED_SOURCE)
