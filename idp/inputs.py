"""What the provider accepts as input, in one place: text without control characters, JSON of a
bounded size and depth, phone numbers as people type them, and how much of a bad input may be
echoed back.

Used by every form (idp.forms.TextForm), the JSON API, client registration and the services that
take text from any of them, so a rule holds whichever door the input came through.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata

import phonenumbers
from flask_babel import lazy_gettext

from .i18n import N_

#: Invisible characters that reorder text (bidirectional overrides and isolates): in a name they
#: make an address or a role read as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: The most of a bad input quoted back in an error (never the whole of a 10 MB parameter).
ECHO_LIMIT = 40

#: JSON bodies: nesting deeper than this is refused before it is parsed.
JSON_MAX_DEPTH = 20


class BadJson(ValueError):
    """A body that is not JSON, too deeply nested to be anything this provider expects, or holding
    something that is not text."""


def has_control_characters(text: str) -> bool:
    """True if the text holds a control character (NUL, newline, DEL, C1...) or a bidirectional
    override: nothing a person types into a name, an email address or a code."""
    return any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in text)


#: whitespace a pasted value brings along (a spreadsheet cell copied ends in a line break)
_PASTED_WHITESPACE = str.maketrans(dict.fromkeys("\t\n\r\x0b\x0c", " "))


def flatten_pasted(text: str) -> str:
    """A search or filter value as a person meant it: the tabs and line breaks a paste brought
    along become spaces (other control characters stay, for the caller to refuse)."""
    return text.translate(_PASTED_WHITESPACE)


def is_blank(text: str) -> bool:
    """True if nothing in the text would show: only spaces, and invisible format characters (a
    zero-width space or joiner, a soft hyphen...). A name like that reads as no name at all."""
    return not any(unicodedata.category(ch) not in _INVISIBLE for ch in text)


_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn"})


def echo(value) -> str:
    """A short, printable prefix of an input, fit to quote in an error message."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:ECHO_LIMIT])
    return text + ("…" if len(value if isinstance(value, str) else repr(value)) > ECHO_LIMIT else "")


def repeated(params, names) -> str | None:
    """The first of ``names`` given more than once in ``params`` (a MultiDict), or None."""
    return next((name for name in names if len(params.getlist(name)) > 1), None)


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { in a JSON text, outside strings (no parsing, so no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, max_depth: int = JSON_MAX_DEPTH):
    """Parse JSON, refusing nesting deeper than ``max_depth`` before parsing (Python's parser
    recurses, and a few kilobytes of brackets would exhaust its stack), and a string holding a lone
    surrogate (below)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson("the body is not UTF-8") from None
    # fewer brackets than the limit cannot nest deeper than it: the usual case costs two counts
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise BadJson(f"the JSON is nested more than {max_depth} levels deep")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson("the body is not valid JSON") from exc
    # "\ud800" parses to a lone surrogate: not text, it fails wherever it is encoded (at a commit, in
    # the store). In what a request carries only such an escape makes one: without "\u", no second look.
    if "\\u" in text:
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadJson("the JSON holds a lone surrogate (\\ud800-\\udfff), which is not text") from None
    return data


def b64url_encode(data: bytes) -> str:
    """``data`` as a base64url segment without padding (JWS compact serialization, RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: the base64url alphabet (RFC 4648 §5), unpadded as JWS writes it
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(segment: str) -> bytes:
    """A base64url segment without its padding, as JWS compact serialization writes it (ValueError
    if it is not one). Strict: Python's decoder skips characters outside the alphabet and ignores
    the spare bits of the last character, so one token could be spelled many ways; here a segment
    has one spelling, the one its bytes encode to."""
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64url_encode(data) != segment:
        raise ValueError("not the canonical base64url of its bytes")
    return data


def json_segment(segment: str):
    """The JSON of a JWS header or payload segment, bounded as ``loads`` bounds a body (ValueError
    if it is not base64url JSON)."""
    return loads(b64url_decode(segment))


# ------------------------------------------------------------------ phone numbers
#: numbers without a country code are read as UK numbers
PHONE_REGION = "GB"
#: longer than any phone number written with spaces and brackets (checked before parsing)
PHONE_MAX_LENGTH = 30
#: digits, spaces, brackets, hyphens and dots, with an optional + first: how people write numbers
#: ("(07700) 900 123", "+44 (0)7700 900123"); letters (an "ext. 12", a mistyped O) are refused rather
#: than quietly dropped, as the parser would
_PHONE_CHARACTERS = re.compile(r"\+?[\d ().\-]+")
#: Ofcom keeps 07700 900000 to 900999 for drama and documentation (every example on the pages, and
#: in GOV.UK's guidance, is one). libphonenumber calls them invalid as no phone has them; they are
#: accepted like any mobile number, so the examples people copy work (a text to one is not delivered,
#: which the SMS set-up reports)
_DRAMA_MOBILE = re.compile(r"7700900\d{3}")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


_PHONE_MESSAGES = {
    "not_a_number": N_("Enter a phone number, like 07700 900123 or +44 7700 900123."),
    "too_short": N_("This phone number is too short. Check you have typed all of it."),
    "too_long": N_("This phone number is too long. Check you have typed it correctly."),
    "country_code": N_("Check the country code. For a number outside the UK, start with + and the country "
                       "code, like +353 for Ireland."),
    "invalid": N_("This is not a valid phone number. Check the digits and enter it again."),
    "not_mobile": N_("Enter a mobile phone number. Text messages cannot be sent to a landline."),
}


class BadPhoneNumber(ValueError):
    """A phone number that was refused. ``reason`` says why (a key of ``_PHONE_MESSAGES``);
    ``message`` (and ``str()``) is a message a person can act on, in the page's language (English
    outside a request: the command line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self):
        return lazy_gettext(_PHONE_MESSAGES[self.reason])

    def __str__(self) -> str:
        return str(self.message)


def phone_number(text: str, *, mobile: bool = False) -> str:
    """The E.164 form (+447700900123) of a phone number as a person typed it: UK numbers in
    national form ("07700 900123", "(07700) 900 123"), any number with its country code
    ("+44 7700 900123", "+44 (0)7700 900123", "0044 7700 900123"). With ``mobile``, only a number
    that can receive text messages. Raises BadPhoneNumber."""
    text = (text or "").strip() if isinstance(text, str) else ""
    if len(text) > PHONE_MAX_LENGTH:
        raise BadPhoneNumber("too_long")
    if not _PHONE_CHARACTERS.fullmatch(text) or not any(ch.isdigit() for ch in text):
        raise BadPhoneNumber("not_a_number")
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneNumber({
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "country_code",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "too_short",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
            phonenumbers.NumberParseException.TOO_LONG: "too_long",
        }.get(exc.error_type, "not_a_number")) from None
    drama = number.country_code == 44 and _DRAMA_MOBILE.fullmatch(str(number.national_number))
    if not drama and not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        raise BadPhoneNumber({
            phonenumbers.ValidationResult.TOO_SHORT: "too_short",
            phonenumbers.ValidationResult.TOO_LONG: "too_long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "country_code",
        }.get(possible, "invalid"))
    if mobile and not drama and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise BadPhoneNumber("not_mobile")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def readable_phone_number(stored: str) -> str:
    """A stored (E.164) number as people write it: UK numbers the UK way ("07700 900123"), others
    with their country code ("+1 202-555-0143")."""
    try:
        number = phonenumbers.parse(stored, None)
    except phonenumbers.NumberParseException:
        return stored
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL
                                      if number.country_code == 44 else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
