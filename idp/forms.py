"""The base of every HTML form: text only, and nothing that arrived garbled."""

from __future__ import annotations

from flask import request
from flask_babel import get_translations, lazy_ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted

from . import inputs

UNREADABLE = _l("This could not be read. Type it again.")
CONTROL_CHARACTERS = _l("This contains characters that cannot be used here (such as a tab or line break). "
                        "Type it again.")

#: WTForms' own messages that these forms can show (an answer that was not one of the choices, a
#: required field, text over a length) are translated from this catalogue, not from WTForms' Welsh
#: (TextForm.Meta): listed here so that they are extracted into it
WTFORMS_MESSAGES = (
    _l("Not a valid choice."),
    _l("This field is required."),
    _l("Invalid input."),
    _l("Invalid Choice: could not coerce."),
    _l("Invalid choice(s): one or more data inputs could not be coerced."),
    lazy_ngettext("'%(value)s' is not a valid choice for this field.",
                  "'%(value)s' are not valid choices for this field.", 1),
    lazy_ngettext("Field cannot be longer than %(max)d character.",
                  "Field cannot be longer than %(max)d characters.", 1),
    lazy_ngettext("Field must be at least %(min)d character long.",
                  "Field must be at least %(min)d characters long.", 1),
    _l("Field must be between %(min)d and %(max)d characters long."),
)


class _Messages:
    """WTForms' messages in the page's language, from this provider's catalogue."""

    def gettext(self, string: str) -> str:
        return get_translations().gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return get_translations().ngettext(singular, plural, n)


class TextForm(FlaskForm):
    """Reads only ``request.form``: a file or JSON posted in place of a field is ignored, so a
    validator never meets anything but text. Text that was not valid UTF-8 (decoded to U+FFFD)
    is refused rather than stored as something the person did not type, and so is text with
    control characters (idp.inputs): no field of any form takes them."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return _Messages()

        def wrap_formdata(self, form, formdata):
            if formdata is _Auto:
                return request.form if _is_submitted() else None
            return formdata

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            if not isinstance(field.data, str):
                continue
            problem = UNREADABLE if "\ufffd" in field.data else \
                CONTROL_CHARACTERS if inputs.has_control_characters(field.data) else None
            if problem is not None:
                field.errors = [*field.errors, problem] if isinstance(field.errors, list) else [problem]
                ok = False
        return ok
