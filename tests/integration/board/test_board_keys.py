"""Signing keys in the board console: each key's state and when it changes, a warning when one is
due for rotation, rotate (published first; a second rotation while one waits is refused) and
retire (never the last key of an algorithm), each audited; tokens signed before a rotation still
validate through it, and stop at once only when a key is withdrawn as compromised."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import time_machine

from idp.admin import keys as admin_keys
from idp.admin import people
from idp.extensions import keys
from idp.oidc import tokens
from tests.integration.board.conftest import BOARD, EO, text_of
from tests.support import code_flow, make_client


def _ring(app):
    with app.app_context():
        return keys().folder.load()


def test_keys_page_shows_each_key_and_warns_when_one_is_due(app, browser_for, make_settings):
    board = browser_for(BOARD)
    page = text_of(board.page("/board/keys"))
    for alg in ("RS256", "ES256", "EdDSA"):
        assert f"Rotate the {alg} key" in page
    assert page.count("Signing since") == 3
    assert "Due for rotation" not in page and "days old" not in page
    # the keys were made 91 days ago
    with app.app_context():
        folder = keys().folder
        aged = [replace(k, created_at=k.created_at - 91 * 86400, signs_from=k.signs_from - 91 * 86400)
                for k in folder.load().infos]
        folder._write_infos(aged)
    page = text_of(board.page("/board/keys"))
    assert "The RS256 signing key is more than 90 days old: rotate it." in page
    assert page.count("Due for rotation") == 3
    board.submit("/board/keys/rotate/RS256", status=303)  # a successor is waiting: no warning for RS256
    page = text_of(board.page("/board/keys"))
    assert "RS256 signing key is more than" not in page and page.count("Due for rotation") == 2


def test_rotate_and_retire_from_the_page(app, client, browser_for, people_here, audit_rows, monkeypatch):
    from idp.oidc.keys import KeyCache

    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 0)  # this process sees each change of the folder at once
    with app.app_context():
        rp = make_client()
    tokens_before = code_flow(client, rp, email=EO, scope="openid")
    board = browser_for(BOARD)
    old_kid = next(k.kid for k in _ring(app).infos if k.alg == "ES256")
    assert "The key signing now was created on" in text_of(board.page("/board/keys/rotate/ES256"))
    board.submit("/board/keys/rotate/ES256", status=303)
    ring = _ring(app)
    new = [k for k in ring.infos if k.alg == "ES256" and k.kid != old_kid]
    assert len(new) == 1 and new[0].signs_from > time.time()  # published first
    page = text_of(board.page("/board/keys"))
    assert "Next: published, not signing yet" in page and "Stops signing at" in page
    # a second rotation while the new key waits adds nothing
    again = board.submit("/board/keys/rotate/ES256", status=400)
    assert "already waiting to take over" in text_of(again.get_data(as_text=True))
    assert len([k for k in _ring(app).infos if k.alg == "ES256"]) == 2
    row, = audit_rows(event="key.rotated")
    assert row.actor == people_here[BOARD] and row.details["kid"] == new[0].kid and row.details["alg"] == "ES256"

    # the new key takes over; tokens signed by the old one still validate until they expire
    with time_machine.travel(new[0].signs_from + 1, tick=False):
        with app.app_context():
            assert tokens.verify_access_token(tokens_before["access_token"]) is not None
            assert keys().ring().signing_key("ES256")[0] == new[0].kid
        assert "Retiring: no longer signs" in text_of(board.page("/board/keys"))
        tokens_after = code_flow(app.test_client(), rp, email=EO, scope="openid")
        with app.app_context():
            assert tokens.verify_access_token(tokens_after["access_token"]) is not None
        from joserfc import jws

        assert jws.extract_compact(tokens_after["access_token"].encode()).protected["kid"] == new[0].kid

    # retiring the only signing key of an algorithm is refused; a compromised key is withdrawn at once
    only_eddsa = next(k.kid for k in _ring(app).infos if k.alg == "EdDSA")
    refused = board.submit(f"/board/keys/{only_eddsa}/retire", {"immediately": "no"}, status=400)
    assert "This is the only EdDSA key" in text_of(refused.get_data(as_text=True))
    board.submit(f"/board/keys/{old_kid}/retire", {"immediately": "yes"}, status=303)
    with app.app_context():
        assert tokens.verify_access_token(tokens_before["access_token"]) is None
    assert old_kid not in json.dumps(client.get("/jwks.json").get_json())
    assert [r.details["immediately"] for r in audit_rows(event="key.retired")] == [True]
    assert board.get("/board/keys/no-such-kid/retire", status=404)
    assert board.get("/board/keys/rotate/HS256", status=404)


def test_only_board_staff_rotate(app, people_here):
    import pytest

    from idp.admin import errors as admin_errors

    with app.app_context():
        for who in ("help@board.example", EO):
            actor = people.party_of(people.account_by_email(who))
            with pytest.raises(admin_errors.Denied):
                admin_keys.rotate(actor, "ES256")
            with pytest.raises(admin_errors.Denied):
                admin_keys.overview(actor)
        with pytest.raises(admin_errors.Invalid):
            admin_keys.rotate(people.party_of(people.account_by_email(BOARD)), "none")
    assert len([k for k in _ring(app).infos if k.alg == "ES256"]) == 1
