"""examboard_rp.bounded_json: the nesting bound is exact for any JSON, whatever its strings hold."""

from __future__ import annotations

import json

import pytest
from examboard_rp import bounded_json
from hypothesis import given
from hypothesis import strategies as st

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(), inner, max_size=3), max_leaves=40)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(values, st.booleans())
def test_depth_is_exact_and_strings_do_not_count(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert bounded_json.nesting_depth(text) == depth(value)
    if depth(value) <= bounded_json.MAX_DEPTH:
        assert bounded_json.parse(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", [
    "[" * 33 + "]" * 33,
    '{"a": ' * 33 + "1" + "}" * 33,
    '["\\"", ' + "[" * 40,               # an escaped quote does not end the string
    '"unterminated \\" ' + "[" * 2000,   # nor hide what follows an unterminated one (json fails first)
    "[" * 100_000,
])
def test_too_deep_is_a_value_error(text):
    with pytest.raises(ValueError):
        bounded_json.parse(text)


def test_brackets_inside_strings_are_not_nesting():
    text = json.dumps({"kid": "[" * 5000, "x": "{" * 5000, "esc": '\\"[[[['})
    assert bounded_json.parse(text)["kid"] == "[" * 5000


def test_invalid_utf8_is_a_value_error():
    with pytest.raises(ValueError):
        bounded_json.parse(b'{"a": "\xff"}')
