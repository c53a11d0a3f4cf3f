"""Board staff and helpdesk accounts from the board console: listed, invited (as the policy lets
the inviter), removed after a confirmation page; nobody removes themselves; the helpdesk invites
and removes nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.admin import errors as admin_errors
from idp.admin import people
from tests.integration.board.conftest import BOARD, EO, HELPDESK, text_of


def test_list_invite_and_remove(app, settings, browser_for, people_here, audit_rows):
    board = browser_for(BOARD)
    page = text_of(board.page("/board/staff"))
    assert BOARD in page and HELPDESK in page and EO not in page
    for data, message in (({"email": "x", "given_name": "A", "family_name": "B", "role": "helpdesk"}, "right format"),
                          ({"email": "new@board.example", "given_name": "A", "family_name": "B"}, "Choose the type"),
                          ({"email": "new@board.example", "given_name": "A", "family_name": "B", "role": "eo"},
                           "belong to a centre"),
                          ({"email": "new@board.example", "given_name": "A", "family_name": "B", "role": "ghost"},
                           "Account type must be one of"),
                          ({"email": HELPDESK, "given_name": "A", "family_name": "B", "role": "board"},
                           "already exists")):
        refused = board.submit("/board/staff/invite", data, status=400)
        assert message in text_of(refused.get_data(as_text=True)), data
    assert not list(Path(settings.mail_outbox_dir).glob("*.eml"))
    board.submit("/board/staff/invite", {"email": "new@board.example", "given_name": "Nell", "family_name": "Desk",
                                         "role": "helpdesk"}, status=303)
    with app.app_context():
        new = people.account_by_email("new@board.example")
        assert (new.role, new.status, new.centre_id) == ("helpdesk", "invited", None)
    assert len(list(Path(settings.mail_outbox_dir).glob("*.eml"))) == 1
    assert "new@board.example" in text_of(board.page("/board/staff"))

    page = text_of(board.page(f"/board/staff/{new.sub}/remove"))
    assert "Remove Nell Desk?" in page
    board.submit(f"/board/staff/{new.sub}/remove", status=303)
    with app.app_context(), pytest.raises(admin_errors.NotFound):
        people.account_by_email("new@board.example")
    assert audit_rows(event="account.deleted", subject=new.sub)[0].actor == people_here[BOARD]


def test_nobody_removes_themselves_and_centre_people_are_not_removed_here(browser_for, people_here):
    board = browser_for(BOARD)
    assert "You cannot delete your own account." in text_of(
        board.get(f"/board/staff/{people_here[BOARD]}/remove", status=403).get_data(as_text=True))
    assert board.get(f"/board/staff/{people_here[EO]}/remove", status=409)


def test_the_helpdesk_invites_and_removes_nobody(app, browser_for, people_here):
    helpdesk = browser_for(HELPDESK)
    page = text_of(helpdesk.page("/board/staff"))
    assert "Invite someone" not in page and "Remove" not in page
    assert helpdesk.get("/board/staff/invite", status=403)
    assert helpdesk.get(f"/board/staff/{people_here[BOARD]}/remove", status=403)
    with app.app_context():
        actor = people.party_of(people.account_by_email(HELPDESK))
        with pytest.raises(admin_errors.Denied):
            people.invite(actor, email="x@board.example", role="helpdesk", centre=None,
                          fields={"given_name": "X", "family_name": "Y"})
        with pytest.raises(admin_errors.Denied):
            people.delete(actor, people_here[BOARD])
