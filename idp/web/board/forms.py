"""The board console's forms. Length limits stop long pastes before anything else; what a value
may be is the services' to say (the form only reads it)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from ...forms import TextForm

EMAIL_FORMAT = _l("Enter an email address in the right format, like name@example.com")


class LinesForm(TextForm):
    """A form with text areas where a line break (or a tab, in pasted JSON) separates what is typed
    rather than being part of it: TextForm's refusal of control characters applies to the rest."""

    MULTILINE: tuple[str, ...] = ()

    def validate(self, extra_validators=None) -> bool:
        typed = {name: self[name].data for name in self.MULTILINE}
        for name in self.MULTILINE:
            self[name].data = re.sub(r"[\r\n\t]", " ", typed[name] or "")
        try:
            return super().validate(extra_validators)
        finally:
            for name, value in typed.items():
                self[name].data = value


class SearchForm(TextForm):
    """Filters read from the query string (GET): no CSRF token, nothing changes."""

    class Meta(TextForm.Meta):
        csrf = False


class ConfirmForm(TextForm):
    """A button-only form (suspend, delete, revoke): CSRF token only."""


# ------------------------------------------------------------------ centres
class CentreSearchForm(SearchForm):
    q = StringField(_l("Centre number or name"), validators=[Length(max=200, message=_l("Search for 200 characters or fewer"))])
    suspended = SelectField(_l("Status"), default="", validate_choice=False, choices=[SelectChoice("", _l("Any status")),
                                                   SelectChoice("no", _l("Active")),
                                                   SelectChoice("yes", _l("Suspended"))])


class CentreForm(TextForm):
    number = StringField(_l("Centre number"), validators=[
        DataRequired(_l("Enter the centre number")),
        Regexp(r"^\s*[0-9]{5}\s*$", message=_l("A centre number is 5 digits, like 12345"))])
    name = StringField(_l("Centre name"), validators=[
        DataRequired(_l("Enter the centre name")), Length(max=200, message=_l("The name must be 200 characters or fewer"))])


class RenameForm(TextForm):
    name = CentreForm.name


# ------------------------------------------------------------------ people
class PersonForm(TextForm):
    """Someone being invited (an Exams Officer)."""

    email = EmailField(_l("Email address"), validators=[
        DataRequired(_l("Enter their email address")), Length(max=254, message=_l("Email address is too long")),
        Regexp(r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$", message=EMAIL_FORMAT)])
    title = StringField(_l("Title (optional)"), validators=[Length(max=32, message=_l("Title must be 32 characters or fewer"))])
    given_name = StringField(_l("First name"), validators=[
        DataRequired(_l("Enter their first name")), Length(max=100, message=_l("First name is too long"))])
    family_name = StringField(_l("Last name"), validators=[
        DataRequired(_l("Enter their last name")), Length(max=100, message=_l("Last name is too long"))])
    job_role = StringField(_l("Job role (optional)"), validators=[Length(max=100, message=_l("Job role is too long"))])
    language = SelectField(_l("Language for their emails"),
                           choices=[SelectChoice("en", "English"), SelectChoice("cy", "Cymraeg")])
    phone = StringField(_l("Phone number (optional)"), validators=[Length(max=20, message=_l("Phone number is too long"))])

    FIELDS = ("title", "given_name", "family_name", "job_role", "language", "phone")

    def fields(self) -> dict:
        return {name: getattr(self, name).data or "" for name in self.FIELDS}


class ReplaceForm(PersonForm):
    keep_as = RadioField(_l("What happens to the current Exams Officer"), default="",
                         validate_choice=False)


class StaffForm(TextForm):
    email = PersonForm.email
    given_name = PersonForm.given_name
    family_name = PersonForm.family_name
    role = RadioField(_l("Type of account"), validate_choice=False,
                      validators=[InputRequired(_l("Choose the type of account"))])


class PeopleSearchForm(SearchForm):
    q = StringField(_l("Email address or name"), validators=[Length(max=100, message=_l("Search for 100 characters or fewer"))])


REASON_HINT = _l("For example, the helpdesk ticket number and what the person asked for. It is kept in the audit trail.")


class ReasonForm(LinesForm):
    MULTILINE = ("reason",)

    reason = TextAreaField(_l("Reason"), validators=[
        Length(max=500, message=_l("The reason must be 500 characters or fewer"))])

    def typed_reason(self) -> str:
        """The reason on one line (a line break typed in the box is a space)."""
        return " ".join((self.reason.data or "").split())


class EmailChangeForm(ReasonForm):
    email = EmailField(_l("New email address"), validators=[
        DataRequired(_l("Enter the new email address")), Length(max=254, message=_l("Email address is too long")),
        Regexp(r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$", message=EMAIL_FORMAT)])
    version = HiddenField(validators=[Regexp(r"^[0-9]{1,9}$", message=_l(
        "This page was out of date. Check what it says now and make your change again."))])


# ------------------------------------------------------------------ client services
class ClientForm(LinesForm):
    MULTILINE = ("redirect_uris", "post_logout_redirect_uris", "jwks")

    client_name = StringField(_l("Name"), validators=[
        DataRequired(_l("Enter the service's name")), Length(max=200, message=_l("The name must be 200 characters or fewer"))])
    description = TextAreaField(_l("What it is for (English)"), validators=[
        Length(max=1000, message=_l("The description must be 1000 characters or fewer"))])
    description_cy = TextAreaField(_l("What it is for (Welsh)"), validators=[
        Length(max=1000, message=_l("The description must be 1000 characters or fewer"))])
    initiate_login_uri = StringField(_l("Launch address (optional)"), validators=[
        Length(max=2000, message=_l("The address must be 2000 characters or fewer"))])
    redirect_uris = TextAreaField(_l("Redirect URIs"), validators=[
        Length(max=20000, message=_l("There are too many redirect URIs"))])
    post_logout_redirect_uris = TextAreaField(_l("Post-logout redirect URIs (optional)"), validators=[
        Length(max=20000, message=_l("There are too many post-logout redirect URIs"))])
    backchannel_logout_uri = StringField(_l("Back-channel logout URI (optional)"), validators=[
        Length(max=2000, message=_l("The address must be 2000 characters or fewer"))])
    backchannel_logout_session_required = BooleanField(
        _l("It needs the session (sid) in each logout notice"))
    grant_types = SelectMultipleField(_l("Grant types"), validate_choice=False)
    token_endpoint_auth_method = RadioField(_l("How it proves who it is at the token endpoint"),
                                            validate_choice=False)
    require_pushed_authorization_requests = BooleanField(
        _l("Its sign-in requests must be sent to this provider first (pushed authorization requests)"))
    dpop_bound_access_tokens = BooleanField(
        _l("Its tokens must be bound to a key it holds (DPoP)"))
    jwks_uri = StringField(_l("JWK Set URI (private_key_jwt only)"), validators=[
        Length(max=2000, message=_l("The address must be 2000 characters or fewer"))])
    jwks = TextAreaField(_l("JWK Set (private_key_jwt only)"), validators=[
        Length(max=60000, message=_l("The JWK Set is too large"))])
    id_token_signed_response_alg = SelectField(_l("ID token signing algorithm"), validate_choice=False)
    scopes = SelectMultipleField(_l("Scopes it may ask for"), validate_choice=False)
    admin_api = BooleanField(_l("It may use the admin API (scope admin_api)"))
    all_profiles = RadioField(_l("Which access profiles it may receive"), default="all",
                              choices=[SelectChoice("all", _l("All of them")),
                                       SelectChoice("some", _l("Only the ones ticked"))])
    allowed_profiles = SelectMultipleField(_l("Access profiles"), validate_choice=False)
    remove_logo = BooleanField(_l("Remove the logo"))

    def lines(self, name: str) -> list[str]:
        return [line.strip() for line in (getattr(self, name).data or "").splitlines() if line.strip()]


class RotateSecretForm(TextForm):
    grace = RadioField(_l("How long should the old secret keep working?"), default="0",
                       choices=[SelectChoice("0", _l("Stop it now")), SelectChoice("3600", _l("1 hour")),
                                SelectChoice("86400", _l("1 day")), SelectChoice("604800", _l("7 days"))])


class InitialTokenForm(TextForm):
    lifetime = SelectField(_l("It can be used for"), default="86400",
                           choices=[SelectChoice("3600", _l("1 hour")), SelectChoice("86400", _l("1 day")),
                                    SelectChoice("604800", _l("7 days")), SelectChoice("2592000", _l("30 days"))])
    uses = StringField(_l("Number of registrations it may make"), default="1", validators=[
        InputRequired(_l("Enter how many registrations it may make")),
        Regexp(r"^\s*0*([1-9]\d{0,2}|1000)\s*$", message=_l("Enter a number from 1 to 1000"))])


class RevokeTokenForm(TextForm):
    token = HiddenField(validators=[DataRequired(), Length(max=64)])


# ------------------------------------------------------------------ keys
class RotateKeyForm(TextForm):
    alg = HiddenField(validators=[DataRequired(), Length(max=16)])


class RetireKeyForm(TextForm):
    immediately = RadioField(_l("How should it stop?"), default="no", choices=[
        SelectChoice("no", _l("Stop signing; keep it until the tokens it signed have expired")),
        SelectChoice("yes", _l("Withdraw it now: the key is compromised, and every token it signed stops working"))])


# ------------------------------------------------------------------ audit
class AuditForm(SearchForm):
    person = StringField(_l("Person (email address or sub)"), validators=[
        Length(max=254, message=_l("Enter 254 characters or fewer"))])
    centre = StringField(_l("Centre number"), validators=[
        Optional(), Regexp(r"^\s*[0-9]{5}\s*$", message=_l("A centre number is 5 digits, like 12345"))])
    client = StringField(_l("Client service (client ID)"), validators=[
        Length(max=64, message=_l("A client ID is 64 characters or fewer"))])
    event = SelectField(_l("Event"), default="", validate_choice=False)
    since = StringField(_l("From (date)"), validators=[
        Optional(), Regexp(r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$", message=_l("Enter a date, like 2026-03-31"))])
    until = StringField(_l("To (date, included)"), validators=[
        Optional(), Regexp(r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$", message=_l("Enter a date, like 2026-03-31"))])
