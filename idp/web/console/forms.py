"""The console's forms. Searches are GET forms (no CSRF token: they change nothing); every form
that changes someone carries its CSRF token, and the version of the person the page showed."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from ...forms import TextForm

EMAIL_FORMAT = Regexp(r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$",
                      message=_l("Enter an email address in the right format, like name@example.com"))
CHOOSE_TYPE = _l("Choose the type of account")
OUT_OF_DATE = _l("This page was out of date. Check what it shows now and try again.")


class SearchForm(TextForm):
    """Find people at a centre: by name or email, account type and status."""

    class Meta:
        csrf = False

    q = StringField(_l("Name or email address"), validators=[
        Length(max=100, message=_l("Search for 100 characters or fewer"))])
    role = SelectField(_l("Account type"), validate_choice=False)
    status = SelectField(_l("Status"), validate_choice=False)


class CentreSearchForm(TextForm):
    """Board staff choosing a centre."""

    class Meta:
        csrf = False

    q = StringField(_l("Centre number or name"), validators=[
        Length(max=200, message=_l("Search for 200 characters or fewer"))])


class ActivityForm(TextForm):
    """Filters on a centre's activity."""

    class Meta:
        csrf = False

    who = StringField(_l("Person (name or email address)"), validators=[
        Length(max=100, message=_l("Search for 100 characters or fewer"))])
    kind = SelectField(_l("What happened"), validate_choice=False)
    person = HiddenField(validators=[Length(max=64)])


class InviteForm(TextForm):
    """An invite's first step: who the person is, and the type of account."""

    title = StringField(_l("Title (optional)"), validators=[
        Length(max=32, message=_l("Title must be 32 characters or fewer"))])
    given_name = StringField(_l("First name"), validators=[
        DataRequired(_l("Enter their first name")), Length(max=100, message=_l("First name is too long"))])
    family_name = StringField(_l("Last name"), validators=[
        DataRequired(_l("Enter their last name")), Length(max=100, message=_l("Last name is too long"))])
    email = EmailField(_l("Email address"), validators=[
        DataRequired(_l("Enter their email address")),
        Length(max=254, message=_l("Email address is too long")), EMAIL_FORMAT])
    job_role = StringField(_l("Job role (optional)"), validators=[
        Length(max=100, message=_l("Job role is too long"))])
    language = SelectField(_l("Language for their emails and pages"),
                           choices=[SelectChoice("en", "English"), SelectChoice("cy", "Cymraeg")],
                           validate_choice=False)
    role = StringField(_l("Type of account"), validators=[
        DataRequired(CHOOSE_TYPE), Length(max=32, message=CHOOSE_TYPE)])


VERSION = [DataRequired(OUT_OF_DATE), Regexp(r"^\d{1,9}$", message=OUT_OF_DATE)]


class AccessForm(TextForm):
    """The access profiles ticked for someone new (the ids are checked by idp.admin)."""

    profiles = SelectMultipleField(_l("Access"), validate_choice=False)


class ManageAccessForm(AccessForm):
    """The access profiles ticked for someone, and their version the page showed."""

    version = HiddenField(validators=VERSION)


class RoleForm(TextForm):
    role = StringField(_l("Type of account"), validators=[
        DataRequired(CHOOSE_TYPE), Length(max=32, message=CHOOSE_TYPE)])
    version = HiddenField(validators=VERSION)
    #: "1" once the person has seen what the change takes away
    confirmed = HiddenField(validators=[Length(max=1)])


class EmailForm(TextForm):
    email = EmailField(_l("New email address"), validators=[
        DataRequired(_l("Enter the new email address")),
        Length(max=254, message=_l("Email address is too long")), EMAIL_FORMAT])
    version = HiddenField(validators=VERSION)


class ConfirmForm(TextForm):
    """A button-only form (resend, unlock, reset, remove): CSRF token only."""
