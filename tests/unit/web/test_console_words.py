"""The centre console's words: every event the provider records about a centre's people reads as
a sentence on the centre's activity (never its id or the catch-all), and the pages' page links."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from idp.web.console import activity
from idp.web.pages import pagination

PACKAGE = Path(activity.__file__).resolve().parents[2]
FALLBACKS = ("Something else happened", )


def _events_recorded_with_a_centre() -> set[str]:
    """Every event name the package passes to ``audit.record`` together with ``centre=``."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "audit" and node.args):
                continue
            if not any(k.arg == "centre" for k in node.keywords):
                continue
            first = node.args[0]
            names = [first] if isinstance(first, ast.Constant) else \
                [first.body, first.orelse] if isinstance(first, ast.IfExp) else []
            found.update(n.value for n in names if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return found


def test_the_scan_finds_the_events():
    found = _events_recorded_with_a_centre()
    assert {"account.invited", "centre.suspended", "centre.reinstated", "signin.completed"} <= found


def test_every_event_about_a_centres_people_has_a_kind_and_a_sentence(app):
    kinds = {event for _label, events in activity.KINDS.values() for event in events}
    missing = _events_recorded_with_a_centre() - kinds - {"token.grant_revoked"}
    assert not missing, f"events recorded with a centre but in no kind of the activity page: {missing}"
    people = {"a": SimpleNamespace(name="Ada Lovelace", email="ada@x.example", centre_id="c"),
              "g": SimpleNamespace(name="Grace Hopper", email="g@x.example", centre_id="c")}
    with app.test_request_context("/?ui_locales=en"):
        for event in sorted(kinds | {"token.grant_revoked"}):
            for outcome in ("success", "failure"):
                row = SimpleNamespace(event=event, outcome=outcome, actor="a", subject="g",
                                      details={"before": {"role": "admin"}, "after": {"role": "user"}})
                sentence = activity.describe(row, people)
                assert not sentence.startswith(FALLBACKS) and event not in sentence, (event, sentence)
                assert sentence.endswith("."), (event, sentence)


def test_people_since_removed_are_named_by_what_the_trail_kept(app):
    row = SimpleNamespace(event="account.deleted", outcome="success", actor="a", subject="gone",
                          details={"before": {"email": "gone@x.example", "role": "user"}})
    ada = {"a": SimpleNamespace(name="Ada Lovelace", email="ada@x.example", centre_id="c")}
    with app.test_request_context("/?ui_locales=en"):
        assert activity.describe(row, ada) == "Ada Lovelace removed the account of gone@x.example."
        row.event = "account.unlocked"
        assert activity.describe(row, ada) == \
            "Ada Lovelace unlocked gone@x.example (account since removed)'s account."
        row.actor, row.event = "cli", "account.invited"
        row.details = {"after": {"email": "new@x.example", "role": "eo"}}
        assert activity.describe(row, {}) == \
            "The exam board invited new@x.example (account since removed) (account type: Exams Officer)."


@pytest.mark.parametrize(("current", "pages", "shown"), [
    (1, 1, None),
    (1, 2, [1, 2]),
    (1, 9, [1, 2, "…", 9]),
    (5, 9, [1, "…", 4, 5, 6, "…", 9]),
    (9, 9, [1, "…", 8, 9]),
    (3, 4, [1, 2, 3, 4]),
])
def test_page_links(app, current, pages, shown):
    with app.test_request_context("/"):
        found = pagination(current, pages, lambda n: f"?page={n}")
    if shown is None:
        assert found is None
        return
    assert [item.get("number", "…") for item in found["items"]] == shown
    assert [item["number"] for item in found["items"] if item.get("current")] == [current]
    assert (found["previous"] is None) == (current == 1)
    assert (found["next"] is None) == (current == pages)
    assert all(item["href"] == f"?page={item['number']}" for item in found["items"] if "number" in item)
