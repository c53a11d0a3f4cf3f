"""The base of every HTML form: text only, and nothing that arrived garbled."""

from __future__ import annotations

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted

from . import inputs

UNREADABLE = _l("This could not be read. Type it again.")
CONTROL_CHARACTERS = _l("This contains characters that cannot be used here (such as a tab or line break). "
                        "Type it again.")


class TextForm(FlaskForm):
    """Reads only ``request.form``: a file or JSON posted in place of a field is ignored, so a
    validator never meets anything but text. Text that was not valid UTF-8 (decoded to U+FFFD)
    is refused rather than stored as something the person did not type, and so is text with
    control characters (idp.inputs): no field of any form takes them."""

    class Meta(FlaskForm.Meta):
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
