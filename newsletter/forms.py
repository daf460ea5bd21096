"""Admin forms (Flask-WTF: each carries a CSRF token)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField, URLField
from wtforms.validators import URL, DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class LogoutForm(FlaskForm):
    pass


class ImportForm(FlaskForm):
    file = FileField(
        "CSV file", validators=[FileRequired(), FileAllowed(["csv", "txt"], "A .csv file, please.")]
    )
    confirmed = BooleanField("They have already confirmed (consent recorded as 'import')")


class PostForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=500)])
    link = URLField("Link", validators=[DataRequired(), URL(require_tld=False), Length(max=2000)])
    summary_html = TextAreaField("Summary (HTML; scripts, styles and forms are removed)")
