"""Sign-in journey forms. Length limits stop 10 kB pastes before any hashing."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from ..forms import TextForm

EMAIL_REQUIRED = _l("Enter your email address")


class EmailStepForm(TextForm):
    email = EmailField(_l("Email address"), validators=[
        DataRequired(EMAIL_REQUIRED), Length(max=254, message=_l("Email address is too long")),
        Regexp(r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$",
               message=_l("Enter an email address in the right format, like name@example.com"))])
    authreq = HiddenField(validators=[Length(max=64)])


class PasswordStepForm(TextForm):
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Enter your password")), Length(max=1024, message=_l("Password is too long"))])


class NewPasswordForm(TextForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(_l("Enter a new password")), Length(max=1024, message=_l("Password is too long"))])


class ForgotForm(TextForm):
    email = EmailStepForm.email


class ResetForm(TextForm):
    code = StringField(_l("Code from the email"), validators=[
        DataRequired(_l("Enter the code from the email")),
        Regexp(r"^\s*\d{4,10}\s*$", message=_l("The code is the number in the email we sent you"))])
    password = NewPasswordForm.password


class ChangePasswordForm(TextForm):
    current = PasswordField(_l("Current password"), validators=[
        DataRequired(_l("Enter your current password")), Length(max=1024, message=_l("Password is too long"))])
    password = NewPasswordForm.password


class ConfirmForm(TextForm):
    """A button-only form (sign out, sign out everywhere): CSRF token only."""
