"""JSON parsing with a bound on nesting, checked before parsing.

CPython's json recurses once per level and raises RecursionError (not ValueError) on input such
as ``[[[[…``: an unsigned token header or a provider answer must not reach it unchecked. Input
deeper than ``max_depth`` is a ValueError, like any other malformed JSON.
"""

from __future__ import annotations

import json
import re

MAX_DEPTH = 32  # a JWS header is flat; a JWKS or discovery document is 3 levels deep

# a JSON string (possessive, so an unterminated one is consumed once, not rescanned) or a bracket
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?|[\[\]{}]', re.DOTALL)


def parse(text: str | bytes, max_depth: int = MAX_DEPTH) -> object:
    """``json.loads`` for UTF-8 ``text`` nested at most ``max_depth`` levels; ValueError otherwise."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # RFC 8259 §8.1; UnicodeDecodeError is a ValueError
    # Fewer brackets than the limit cannot nest deeper than it: the usual case costs two counts.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings. For invalid JSON it is at least the depth the
    parser reaches before it stops, which is what matters."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif token == "]" or token == "}":
            depth -= 1
    return deepest
