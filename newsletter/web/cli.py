"""Shell commands: ``flask --app newsletter <command>``."""

import signal
import threading
from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext

from newsletter.admins import accounts, api_keys, audit, roles, two_factor
from newsletter.bounces.listener import InboundController
from newsletter.content import digests, newsletters, posts
from newsletter.content.models import DigestSchedule
from newsletter.core.addresses import InvalidSignup
from newsletter.subscribers import admin_actions


@click.command("create-admin")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option(
    "--role",
    type=click.Choice(roles.ROLES),
    help="What they may do (a new admin: owner unless given; an existing one keeps theirs).",
)
@with_appcontext
def create_admin(email, password, role):
    """Create an admin who can log in at /admin (or set a new password, or role)."""
    try:
        admin = accounts.create_admin(email, password, role)
    except (accounts.AdminError, InvalidSignup) as error:
        raise click.ClickException(str(error)) from None
    audit.record("admins.create", target=admin.email, detail=admin.role)
    base_url = current_app.config["BASE_URL"]
    click.echo(f"{admin.email} ({admin.role}) can log in at {base_url}/admin/")


@click.command("reset-two-factor")
@click.argument("email")
@with_appcontext
def reset_two_factor(email):
    """Turn off an admin's two-factor login (a lost phone) and end their sessions."""
    admin = accounts.admin_by_email(email)
    if admin is None:
        raise click.ClickException(f"No admin has the address {email}.")
    if admin.totp_secret is None:
        click.echo(f"{admin.email} has no two-factor login; nothing changed.")
        return
    two_factor.disable(admin)
    audit.record("two_factor.disable", target=admin.email, detail="reset-two-factor")
    click.echo(
        f"Two-factor login is off for {admin.email}: their recovery codes are deleted and "
        "every session of theirs has ended. They log in with their password alone, and can "
        f"turn it on again at {current_app.config['BASE_URL']}/admin/two-factor"
    )


@click.command("create-api-key")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(list(api_keys.SCOPES)),
    help="What the key may do; repeat for several. None given: every scope.",
)
@click.option(
    "--expires-in",
    type=click.IntRange(1, api_keys.MAX_DAYS),
    metavar="DAYS",
    help="The key stops working after this many days (default: never).",
)
@with_appcontext
def create_api_key(name, scopes, expires_in):
    """Make a key for /api/v1; it is printed once, as the last line, and never again."""
    try:
        api_key, key = api_keys.create(name, list(scopes), expires_in)
    except api_keys.InvalidKeyName as error:
        raise click.ClickException(str(error)) from None
    expiry = f"until {api_key.expires_at:%Y-%m-%d %H:%M} UTC" if api_key.expires_at else "for good"
    click.echo(
        f"API key {api_key.name!r} ({api_key.prefix}…) made, with "
        f"{api_key.scopes or 'every scope'}, {expiry}. Send it as "
        "'Authorization: Bearer KEY'; it is shown only now:"
    )
    click.echo(key)


@click.command("import-subscribers")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--confirmed", is_flag=True, help="Mark them confirmed (consent: 'import').")
@with_appcontext
def import_subscribers(csv_file, confirmed):
    """Import subscribers from a CSV with an 'email' column (and optional 'name')."""
    with open(csv_file, encoding="utf-8-sig", newline="") as lines:
        try:
            report = admin_actions.import_subscribers(lines, confirmed=confirmed)
        except admin_actions.ImportFileError as error:
            raise click.ClickException(str(error)) from None
    summary = f"added {report.added}, skipped {report.skipped}, rejected {report.rejected}"
    audit.record(
        "subscribers.import",
        target=csv_file,
        detail=f"{summary}, confirmed: {'yes' if confirmed else 'no'}",
    )
    for line, reason in report.rejections:
        click.echo(f"line {line}: {reason}", err=True)
    click.echo(summary)


@click.command("import-feed")
@click.argument("url_or_path", required=False)
@with_appcontext
def import_feed(url_or_path):
    """Pull posts from the site's feed (default: FEED_URL)."""
    source = url_or_path or current_app.config["FEED_URL"]
    if not source:
        raise click.ClickException("Give a feed URL or file, or set FEED_URL.")
    try:
        report = posts.import_feed(source)
    except posts.FeedError as error:
        raise click.ClickException(str(error)) from None
    audit.record(
        "posts.import_feed",
        target=source,
        detail=f"added {report.added}, updated {report.updated}",
    )
    click.echo(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"refused {report.refused} (links that are not http or https)"
    )


@click.command("send-digest")
@click.option("--subject", help="Subject line (default: the site name and today's date).")
@click.option("--newsletter", help="The newsletter's slug (default: the first newsletter).")
@with_appcontext
def send_digest(subject, newsletter):
    """Build a digest of the posts not yet sent and queue it to every confirmed subscriber
    (of one newsletter: the first one by default)."""
    subject = subject or f"{current_app.config['SITE_NAME']}: {date.today():%d %B %Y}"
    try:
        newsletter_id = newsletters.by_slug(newsletter).id if newsletter else None
        digest = digests.create_digest(subject, newsletter_id=newsletter_id)
    except (digests.DigestError, newsletters.NewsletterError) as error:
        raise click.ClickException(str(error)) from None
    digests.send_now(digest.id)
    audit.record("digests.send", target=f"digest {digest.id}", detail=digest.subject)
    click.echo(digest.id)


@click.command("create-newsletter")
@click.argument("slug")
@click.option("--name", required=True, help="The name readers see.")
@click.option("--description", default="", help="A sentence for the sign-up form.")
@click.option("--not-default", is_flag=True, help="A sign-up that names none does not get it.")
@click.option("--private", is_flag=True, help="Keep its digests out of the public archive.")
@click.option(
    "--schedule",
    type=click.Choice([schedule.value for schedule in DigestSchedule]),
    default=DigestSchedule.OFF.value,
    show_default=True,
    help="Make a digest of its new posts by itself.",
)
@click.option(
    "--weekday", type=click.IntRange(0, 6), default=0, show_default=True, help="Monday is 0."
)
@click.option("--hour", type=click.IntRange(0, 23), default=8, show_default=True, help="In UTC.")
@click.option("--category", default="", help="Only posts in this feed category.")
@with_appcontext
def create_newsletter(slug, name, description, not_default, private, **schedule):
    """Create a newsletter subscribers can choose, with its digest schedule."""
    try:
        # Checked first: a schedule it cannot keep leaves no newsletter behind.
        newsletters.checked_schedule(**schedule)
        newsletter = newsletters.create(
            slug, name, description, default_on=not not_default, public=not private
        )
        newsletters.set_schedule(newsletter, **schedule)
    except newsletters.NewsletterError as error:
        raise click.ClickException(str(error)) from None
    audit.record("newsletters.create", target=newsletter.slug, detail=newsletter.name)
    click.echo(f"Created newsletter {newsletter.slug!r} ({newsletter.name}), id {newsletter.id}")


@click.command("inbound")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
@click.option("--lmtp", is_flag=True, help="Speak LMTP, for an MTA's transport, not SMTP.")
@with_appcontext
def inbound(host, port, lmtp):
    """Take bounces, complaint reports and unsubscribes by mail until stopped."""
    config = current_app.config
    addresses = [config[name] for name in ("BOUNCE_ADDRESS", "LIST_UNSUBSCRIBE_MAILTO")]
    if not any(addresses):
        raise click.ClickException("Set BOUNCE_ADDRESS or LIST_UNSUBSCRIBE_MAILTO first.")
    listener = InboundController(current_app._get_current_object(), host, port, lmtp)
    listener.start()
    click.echo(
        f"{'LMTP' if lmtp else 'SMTP'} on {host}:{port} for "
        f"{' and '.join(filter(None, addresses))}; Ctrl-C stops it"
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    listener.stop()


def register(app):
    commands = (
        create_admin,
        reset_two_factor,
        create_api_key,
        import_subscribers,
        import_feed,
        send_digest,
        create_newsletter,
        inbound,
    )
    for command in commands:
        app.cli.add_command(command)
