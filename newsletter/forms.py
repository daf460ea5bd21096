"""Admin forms (Flask-WTF: each carries a CSRF token)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired


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
