from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length


def _strip(value):
    """Pasted addresses often carry spaces around them: not a reason to refuse them."""
    return value.strip() if isinstance(value, str) else value


class RegisterForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[_strip], validators=[
        DataRequired(), Email(check_deliverability=False), Length(max=254)])
    display_name = StringField(_l("Display name"), filters=[_strip], validators=[
        DataRequired(), Length(max=120)])
    password = PasswordField(_l("Password"), validators=[
        DataRequired(), Length(min=8, max=200, message=_l("Use at least 8 characters."))])
    confirm = PasswordField(_l("Repeat the password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[_strip], validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Length(min=8, max=200, message=_l("Use at least 8 characters."))])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])
