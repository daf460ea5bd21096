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
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional, Regexp

from newsletter import newsletters, outgoing


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
    periodic_enabled = BooleanField("Send a digest of new posts every week")
    periodic_weekday = SelectField(
        "On", coerce=int, choices=[SelectChoice(n, day) for n, day in enumerate(WEEKDAYS)]
    )
    periodic_hour = IntegerField("At hour (UTC)", validators=[NumberRange(0, 23)])
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
