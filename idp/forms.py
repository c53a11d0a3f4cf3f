"""The base of every HTML form: text only, and nothing that arrived garbled."""

from __future__ import annotations

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted

UNREADABLE = _l("This could not be read. Type it again.")


class TextForm(FlaskForm):
    """Reads only ``request.form``: a file or JSON posted in place of a field is ignored, so a
    validator never meets anything but text. Text that was not valid UTF-8 (decoded to U+FFFD)
    is refused rather than stored as something the person did not type."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            if formdata is _Auto:
                return request.form if _is_submitted() else None
            return formdata

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and "\ufffd" in field.data:
                field.errors = [*field.errors, UNREADABLE] if isinstance(field.errors, list) else [UNREADABLE]
                ok = False
        return ok
