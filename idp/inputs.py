"""What the provider accepts as input, in one place: text without control characters, JSON of a
bounded size and depth, and how much of a bad input may be echoed back.

Used by every form (idp.forms.TextForm), the JSON API, client registration and the services that
take text from any of them, so a rule holds whichever door the input came through.
"""

from __future__ import annotations

import json
import unicodedata

#: Invisible characters that reorder text (bidirectional overrides and isolates): in a name they
#: make an address or a role read as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: The most of a bad input quoted back in an error (never the whole of a 10 MB parameter).
ECHO_LIMIT = 40

#: JSON bodies: nesting deeper than this is refused before it is parsed.
JSON_MAX_DEPTH = 20


class BadJson(ValueError):
    """A body that is not JSON, or too deeply nested to be anything this provider expects."""


def has_control_characters(text: str) -> bool:
    """True if the text holds a control character (NUL, newline, DEL, C1...) or a bidirectional
    override: nothing a person types into a name, an email address or a code."""
    return any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in text)


def echo(value) -> str:
    """A short, printable prefix of an input, fit to quote in an error message."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:ECHO_LIMIT])
    return text + ("…" if len(value if isinstance(value, str) else repr(value)) > ECHO_LIMIT else "")


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
    recurses, and a few kilobytes of brackets would exhaust its stack)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson("the body is not UTF-8") from None
    if nesting_depth(text) > max_depth:
        raise BadJson(f"the JSON is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson("the body is not valid JSON") from exc
