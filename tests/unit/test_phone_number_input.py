"""idp.inputs.phone_number: UK numbers as people write them, any number with its country code, to
E.164; everything else refused with a reason, and nothing but BadPhoneNumber ever raised."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idp.inputs import PHONE_MAX_LENGTH, BadPhoneNumber, phone_number, readable_phone_number

E164 = re.compile(r"\+[1-9]\d{6,14}")


@pytest.mark.parametrize("typed,stored", [
    ("07700 900123", "+447700900123"),
    ("+44 7700 900123", "+447700900123"),
    ("(07700) 900 123", "+447700900123"),
    ("+44 (0)7700 900123", "+447700900123"),
    ("0044 7700 900 123", "+447700900123"),
    ("07700-900-123", "+447700900123"),
    ("07700.900.123", "+447700900123"),
    ("\u0660\u0667\u0667\u0660\u0660 \u0669\u0660\u0660\u0661\u0662\u0663", "+447700900123"),  # Arabic-Indic digits
    ("07911 123456", "+447911123456"),
    ("020 7946 0018", "+442079460018"),       # a London landline (fine for a contact number)
    ("+1 (202) 555-0143", "+12025550143"),
    ("+353 85 123 4567", "+353851234567"),
])
def test_accepted(typed, stored):
    assert phone_number(typed) == stored


@pytest.mark.parametrize("typed,reason", [
    ("", "not_a_number"),
    ("   ", "not_a_number"),
    ("hello", "not_a_number"),
    ("0770O 900123", "not_a_number"),         # a letter for a digit is never dropped silently
    ("07700 900123 ext 4", "not_a_number"),
    ("07700\t900123", "not_a_number"),
    ("+44+7700900123", "not_a_number"),
    ("7" * (PHONE_MAX_LENGTH + 1), "too_long"),
    ("07700 9001234", "too_long"),
    ("12", "too_short"),
    ("07700 90012", "invalid"),
    ("01632 960001", "invalid"),               # Ofcom's drama landlines: libphonenumber says invalid
    ("+999 1234 5678", "country_code"),
    (None, "not_a_number"),
    (7700900123, "not_a_number"),
])
def test_refused(typed, reason):
    with pytest.raises(BadPhoneNumber) as refused:
        phone_number(typed)
    assert refused.value.reason == reason
    assert str(refused.value)  # (outside a request: the English message)


@pytest.mark.parametrize("typed", ["020 7946 0018", "0800 123 4567"])
def test_a_text_message_needs_a_mobile(typed):
    with pytest.raises(BadPhoneNumber) as refused:
        phone_number(typed, mobile=True)
    assert refused.value.reason == "not_mobile" and "landline" in str(refused.value)
    assert phone_number("07700 900123", mobile=True) == "+447700900123"
    assert phone_number("+1 202 555 0143", mobile=True) == "+12025550143"  # US numbers may be either


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 +()-.#*xXo\u0660\u00a0"), max_size=40) | st.text(max_size=40))
def test_anything_typed_is_e164_or_a_refusal(typed):
    try:
        stored = phone_number(typed)
    except BadPhoneNumber as refused:
        assert refused.reason in ("not_a_number", "too_short", "too_long", "country_code", "invalid")
    else:
        assert E164.fullmatch(stored)
        assert phone_number(stored) == stored  # E.164 in, the same out


@pytest.mark.parametrize("stored,shown", [("+447700900123", "07700 900123"), ("+442079460018", "020 7946 0018"),
                                          ("+12025550143", "+1 202-555-0143"), ("", ""), ("not a number", "not a number")])
def test_stored_numbers_read_as_people_write_them(stored, shown):
    assert readable_phone_number(stored) == shown
    if stored.startswith("+"):
        assert phone_number(shown) == stored  # and what is shown is taken back unchanged
