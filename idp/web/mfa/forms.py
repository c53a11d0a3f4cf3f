"""The second-factor pages' form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import Length

from ...forms import TextForm


class AnswerForm(TextForm):
    """Every second-factor answer: a code, or a WebAuthn credential for a ceremony."""

    code = StringField(_l("Code"), validators=[Length(max=40)])
    method_id = HiddenField(validators=[Length(max=64)])
    ceremony = HiddenField(validators=[Length(max=64)])
    credential = HiddenField(validators=[Length(max=20_000)])
    label = StringField(_l("Name for this method (optional)"), validators=[Length(max=64)])
    phone = StringField(_l("Mobile phone number"), validators=[Length(max=20)])
    #: at sign-in, when the account type is offered it (policies/security.toml [remember_device])
    remember = BooleanField()

