"""Sign-in journey forms. Length limits stop 10 kB pastes before any hashing."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from ... import inputs
from ...forms import TextForm

EMAIL_REQUIRED = _l("Enter your email address")
EMAIL_SHAPE = [Length(max=254, message=_l("Email address is too long")),
               Regexp(r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$",
                      message=_l("Enter an email address in the right format, like name@example.com"))]


class EmailStepForm(TextForm):
    email = EmailField(_l("Email address"), validators=[DataRequired(EMAIL_REQUIRED), *EMAIL_SHAPE])
    authreq = HiddenField(validators=[Length(max=64)])


class PasskeyForm(TextForm):
    """"Sign in with a passkey": the browser's answer to the email page's ceremony."""

    authreq = HiddenField(validators=[Length(max=64)])
    ceremony = HiddenField(validators=[DataRequired(), Length(max=200)])
    credential = HiddenField(validators=[DataRequired(), Length(max=20_000)])


class PasswordStepForm(TextForm):
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Enter your password")), Length(max=1024, message=_l("Password is too long"))])


class NewPasswordForm(TextForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(_l("Enter a new password")), Length(max=1024, message=_l("Password is too long"))])


class NewEmailForm(TextForm):
    """My account: the address to sign in with from now on (a code is sent to it)."""

    email = EmailField(_l("New email address"), validators=[
        DataRequired(_l("Enter your new email address")), *EMAIL_SHAPE])


class EmailCodeForm(TextForm):
    code = StringField(_l("Code from the email"), validators=[
        DataRequired(_l("Enter the code from the email")),
        Regexp(r"^\s*\d{4,10}\s*$", message=_l("The code is the number in the email we sent to your new address"))])


class EndSessionForm(TextForm):
    """My account: sign out of one browser (a session's ``sid``)."""

    sid = HiddenField(validators=[DataRequired(), Length(max=64)])


class ForgetDeviceForm(TextForm):
    """My account: stop remembering one device (a remembered device's id)."""

    device = HiddenField(validators=[DataRequired(), Length(max=36)])


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


class ProfileForm(TextForm):
    """The details a person may edit themselves (the seed guide's "edit your profile")."""

    title = StringField(_l("Title"), validators=[Length(max=32, message=_l("Title must be 32 characters or fewer"))])
    given_name = StringField(_l("First name"), validators=[
        DataRequired(_l("Enter your first name")), Length(max=100, message=_l("First name is too long"))])
    family_name = StringField(_l("Last name"), validators=[
        DataRequired(_l("Enter your last name")), Length(max=100, message=_l("Last name is too long"))])
    job_role = StringField(_l("Job role"), validators=[Length(max=100, message=_l("Job role is too long"))])
    language = SelectField(_l("Language"), choices=[SelectChoice("en", "English"), SelectChoice("cy", "Cymraeg")])
    # any way of writing it (idp.inputs.phone_number): checked and stored as E.164 by the service
    phone = StringField(_l("Phone number"), validators=[
        Length(max=inputs.PHONE_MAX_LENGTH, message=_l("Phone number is too long"))])
