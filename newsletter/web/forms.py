"""Admin forms (Flask-WTF: each carries a CSRF token)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from newsletter.admins import accounts, roles
from newsletter.content import newsletters, posts
from newsletter.content.models import DigestSchedule, TrackingMode
from newsletter.webhooks import outgoing


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class CodeForm(FlaskForm):
    """A code from the authenticator app (or, at login, a recovery code)."""

    code = StringField("Code", validators=[DataRequired(), Length(max=40)])


class ProveIdentityForm(FlaskForm):
    proof = PasswordField(
        "A code from your authenticator app, or your password", validators=[DataRequired()]
    )


class LogoutForm(FlaskForm):
    """Logging out is a POST with a CSRF token, so no other site can do it for you."""


ROLE_CHOICES = [SelectChoice(role, role.capitalize()) for role in roles.ROLES]


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=roles.EDITOR)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class AcceptInvitationForm(FlaskForm):
    password = PasswordField(
        "Choose a password",
        validators=[DataRequired(), Length(min=accounts.PASSWORD_MIN_LENGTH, max=200)],
    )


class LiftAddressForm(FlaskForm):
    """An erased address to allow again: no subscriber's page is left to do it from."""

    email = EmailField("Erased address", validators=[DataRequired(), Length(max=320)])


class ImportForm(FlaskForm):
    file = FileField(
        "CSV file", validators=[FileRequired(), FileAllowed(["csv", "txt"], "A .csv file, please.")]
    )
    confirmed = BooleanField("They have already confirmed (consent recorded as 'import')")


class PostForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=500)])
    link = URLField(
        "Link",
        validators=[
            DataRequired(),
            URL(require_tld=False),
            Regexp(r"(?i)https?://", message="The link must start with http:// or https://."),
            Length(max=2000),
        ],
    )
    summary_markdown = TextAreaField("Summary (Markdown)")


class DigestForm(FlaskForm):
    # Shown when there is more than one newsletter; unsent, the first one.
    newsletter = SelectField(
        "For the readers of", coerce=int, default=lambda: newsletters.first().id
    )
    subject = StringField("Subject", validators=[DataRequired(), Length(max=200)])
    intro = TextAreaField("Intro (optional, Markdown)")
    posts = SelectMultipleField(
        "Posts",
        coerce=int,
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


class TestSendForm(FlaskForm):
    email = EmailField("Send a test to", validators=[DataRequired()])


class ScheduleForm(FlaskForm):
    send_at = DateTimeLocalField("Send at (UTC)", validators=[DataRequired()])


class ActionForm(FlaskForm):
    """A button that changes something: only its CSRF token."""


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class SettingsForm(FlaskForm):
    welcome_enabled = BooleanField("Send a welcome email with the latest posts after confirming")
    welcome_subject = StringField("Welcome subject", validators=[DataRequired(), Length(max=200)])
    welcome_intro = TextAreaField("Welcome text (Markdown)")
    send_rate_limit = IntegerField(
        "At most this many messages per second, over all workers (0: no limit)",
        validators=[Optional(), NumberRange(0, 100_000)],
        filters=[lambda value: value or 0],
    )


class EmailTemplateForm(FlaskForm):
    html = TextAreaField("HTML part")
    text = TextAreaField("Text part")


class BlockedDomainsForm(FlaskForm):
    domains = TextAreaField("Blocked domains, one a line (each blocks the domains under it too)")


class WebhookEndpointForm(FlaskForm):
    url = StringField("URL", validators=[DataRequired(), Length(max=2000)])
    events = SelectMultipleField(
        "Events",
        choices=[SelectChoice(name, name) for name in outgoing.EVENTS],
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        validators=[DataRequired(message="Choose at least one event.")],
    )


def no_nul(_form, field):
    """PostgreSQL cannot store a NUL in text: refuse it in the form rather than fail there."""
    if field.data and "\x00" in field.data:
        raise ValidationError("This must not contain a NUL character.")


SCHEDULES = [
    SelectChoice(DigestSchedule.OFF, "Off: digests only by hand"),
    SelectChoice(DigestSchedule.DAILY, "Daily"),
    SelectChoice(DigestSchedule.WEEKLY, "Weekly"),
]


TRACKING_MODES = [
    SelectChoice(TrackingMode.OFF, "Off: nothing rewritten, no pixel"),
    SelectChoice(TrackingMode.COUNTS, "Counts: per digest and per link totals, nobody named"),
    SelectChoice(TrackingMode.PER_SUBSCRIBER, "Per reader: who opened and clicked what"),
]


class TrackingForm(FlaskForm):
    """A newsletter's engagement tracking (docs/engagement.md)."""

    tracking = SelectField("Tracking", choices=TRACKING_MODES, default=TrackingMode.OFF)


class NewsletterForm(FlaskForm):
    """A newsletter and its digest schedule; the slug only when it is made."""

    slug = StringField(
        "Slug (in links, the API and the List-Id header: lower-case letters, digits, hyphens)",
        validators=[DataRequired(), Length(max=64), no_nul],
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200), no_nul])
    description = TextAreaField(
        "Description (shown beside its checkbox at sign-up)",
        validators=[Length(max=2000), no_nul],
    )
    default_on = BooleanField(
        "On by default: a sign-up that names no newsletter gets it", default=True
    )
    public = BooleanField("Public: its digests are in the archive", default=True)
    schedule = SelectField("Digest of new posts", choices=SCHEDULES, default=DigestSchedule.OFF)
    schedule_weekday = SelectField(
        "On (weekly)",
        coerce=int,
        choices=[SelectChoice(n, day) for n, day in enumerate(WEEKDAYS)],
        default=0,
    )
    schedule_hour = IntegerField(
        "At hour (UTC, 0 to 23)", validators=[InputRequired(), NumberRange(0, 23)], default=8
    )
    schedule_category = StringField(
        "Only posts in this feed category (empty: every post)",
        validators=[Length(max=posts.CATEGORY_LENGTH), no_nul],
    )
