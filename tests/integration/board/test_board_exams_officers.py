"""Exams Officers from the board console: invite a centre's first, replace one (the old account
deleted, or kept at the centre as an admin when there is room), resend an invite; only board staff;
a failed email or a refused choice changes nothing. And the keep-as-admin rule under two board
staff acting at once (PostgreSQL: two processes)."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import Account, SsoSession
from idp.admin import errors as admin_errors
from idp.admin import people
from idp.centres import grants
from idp.extensions import db
from tests.integration.board.conftest import ADMIN, BOARD, EO, HELPDESK, text_of
from tests.support import make_account, make_centre, sign_in

NEW_EO = {"email": "new.eo@centre.example", "given_name": "Nia", "family_name": "Newydd", "language": "cy"}


def _accounts(app, centre="12345"):
    with app.app_context():
        return {a.email: a.role for a in db.session.scalars(select(Account).where(
            Account.centre_id.is_not(None))) if a.centre_number == centre}


def _outbox(settings) -> list[str]:
    import email
    import email.policy

    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
            for p in sorted(Path(settings.mail_outbox_dir).glob("*.eml"))]


def test_invite_a_new_centres_exams_officer(app, settings, browser_for, people_here, audit_rows):
    with app.app_context():
        make_centre("54321", "New School")
    board = browser_for(BOARD)
    page = text_of(board.page("/board/centres/54321"))
    assert "Invite the Exams Officer" in page and "Replace the Exams Officer" not in page
    refused = board.submit("/board/centres/54321/exams-officer/new", {**NEW_EO, "email": "not an address"}, status=400)
    assert "Enter an email address in the right format" in text_of(refused.get_data(as_text=True))
    taken = board.submit("/board/centres/54321/exams-officer/new", {**NEW_EO, "email": ADMIN.upper()}, status=400)
    assert "An account with this email address already exists." in text_of(taken.get_data(as_text=True))
    assert _outbox(settings) == []
    board.submit("/board/centres/54321/exams-officer/new", NEW_EO, status=303)
    assert _accounts(app, "54321") == {"new.eo@centre.example": "eo"}
    assert _outbox(settings) == ["new.eo@centre.example"]
    # a second one is refused with the policy's words; the page now offers a replacement
    again = board.submit("/board/centres/54321/exams-officer/new", {**NEW_EO, "email": "two@centre.example"},
                         status=400)
    assert "A centre has exactly one Exams Officer" in text_of(again.get_data(as_text=True))
    page = text_of(board.page("/board/centres/54321"))
    assert "Replace the Exams Officer" in page and "Resend the Exams Officer's invite" in page
    assert browser_for(HELPDESK).get("/board/centres/54321/exams-officer/new", status=403)


def test_an_invite_that_cannot_be_emailed_creates_nothing(app, browser_for, people_here, monkeypatch):
    from idp.notify.mail import DeliveryError
    from idp.web.board import centres as views

    with app.app_context():
        make_centre("54321", "New School")

    def refuse(_invited):
        raise DeliveryError("550 mailbox unavailable")

    monkeypatch.setattr(views, "send_invite", refuse)
    board = browser_for(BOARD)
    refused = board.submit("/board/centres/54321/exams-officer/new", NEW_EO, status=400)
    assert "could not be emailed, so nothing was changed" in text_of(refused.get_data(as_text=True))
    refused = board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": "admin"}, status=400)
    assert "could not be emailed" in text_of(refused.get_data(as_text=True))
    assert _accounts(app, "54321") == {}
    assert _accounts(app)[EO] == "eo" and NEW_EO["email"] not in _accounts(app)


def test_replace_deletes_the_old_exams_officer(app, browser_for, people_here, audit_rows):
    board = browser_for(BOARD)
    page = text_of(board.page("/board/centres/12345/exams-officer/replace"))
    assert "The Exams Officer now is Eve Lovelace (eo@centre.example)" in page
    assert "Delete their account" in page and "Keep them at the centre as Admin" in page
    board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": ""}, status=303)
    accounts = _accounts(app)
    assert EO not in accounts and accounts["new.eo@centre.example"] == "eo"
    assert [r.details.get("reason") for r in audit_rows(event="account.deleted", subject=people_here[EO])] == \
        ["replaced"]


def test_replace_keeps_the_old_exams_officer_as_an_admin(app, browser_for, people_here, audit_rows):
    eo_browser = browser_for(EO)
    board = browser_for(BOARD)
    board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": "admin"}, status=303)
    accounts = _accounts(app)
    assert accounts[EO] == "admin" and accounts["new.eo@centre.example"] == "eo"
    with app.app_context():
        old = people.account_by_email(EO)
        # what they held that an admin may hold (an EO holds everything an EO may)
        from idp import policy

        assert grants.profiles_of(old) == policy.current().allowed_profiles("admin")
        assert old.version == 2
        assert db.session.query(SsoSession).filter_by(account_id=old.id, ended_at=None).count() == 0
    assert eo_browser.http.get("/account").status_code == 302  # signed out: the next sign-in is as an admin
    row, = audit_rows(event="account.role_changed", subject=people_here[EO])
    assert row.actor == people_here[BOARD] and row.details["before"]["role"] == "eo" and \
        row.details["after"]["role"] == "admin" and row.details["reason"] == "replaced"
    assert sign_in(app.test_client(), EO).status_code == 303


def test_keeping_the_old_exams_officer_needs_room_at_the_centre(app, browser_for, people_here):
    with app.app_context():
        for n in (2, 3):
            make_account(f"admin{n}@centre.example", role="admin")
    board = browser_for(BOARD)
    page = text_of(board.page("/board/centres/12345/exams-officer/replace"))
    assert "A centre can have at most 3 Admin accounts" in page  # the choice is shown, not offered
    refused = board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": "admin"}, status=400)
    assert "A centre can have at most 3 Admin accounts" in text_of(refused.get_data(as_text=True))
    accounts = _accounts(app)
    assert accounts[EO] == "eo" and NEW_EO["email"] not in accounts  # nothing half-done
    for keep_as, message in (("eo", "can only be kept as one of: admin, user"),
                             ("board", "can only be kept as one of"), ("x" * 50, "can only be kept as one of")):
        refused = board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": keep_as},
                               status=400)
        assert message in text_of(refused.get_data(as_text=True)), keep_as
    # as a user there is always room
    board.submit("/board/centres/12345/exams-officer/replace", {**NEW_EO, "keep_as": "user"}, status=303)
    assert _accounts(app)[EO] == "user"


def test_only_board_staff_replace(app, people_here):
    with app.app_context():
        for who in (HELPDESK, EO, ADMIN):
            actor = people.party_of(people.account_by_email(who))
            with pytest.raises(admin_errors.Denied):
                people.replace(actor, role="eo", centre="12345", email="x@centre.example",
                               fields={"given_name": "X", "family_name": "Y"}, keep_as="admin")
        assert people.account_by_email(EO).role == "eo"


# ------------------------------------------------------------------ two board staff at once
TIMEOUT = 120


def _replace_worker(settings, barrier, results, name: str) -> None:
    try:
        app = create_app(settings)
        with app.app_context():
            actor = people.operator()
            db.session.commit()
            barrier.wait(timeout=TIMEOUT)
            try:
                people.replace(actor, role="eo", centre="12345", email=f"{name}@centre.example",
                               fields={"given_name": name, "family_name": "Officer"}, keep_as="admin")
            except admin_errors.AdminError as exc:
                db.session.rollback()
                results.put((name, type(exc).__name__, exc.message))
            else:
                results.put((name, "ok", ""))
        app.extensions["idp.db"].dispose()
    except Exception:
        results.put((name, "crash", traceback.format_exc()))
        barrier.abort()


@pytest.mark.shared_store
def test_two_replacements_at_once_never_overfill_the_admins(app, settings, people_here):
    """The centre has room for one more admin: of two replacements at once that keep the old EO
    as an admin, one succeeds; the other (which would keep the first's new EO as an admin too,
    making four) is refused with the limit's reason."""
    with app.app_context():
        make_account("admin2@centre.example", role="admin")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_replace_worker, args=(settings, barrier, results, name)) for name in ("a", "b")]
    for p in procs:
        p.start()
    try:
        outcomes = sorted(results.get(timeout=TIMEOUT) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(kind != "crash" for _, kind, _ in outcomes), outcomes
    assert sorted(kind for _, kind, _ in outcomes) == ["Denied", "ok"], outcomes
    assert "at most 3 Admin" in next(m for _, kind, m in outcomes if kind == "Denied")
    roles = _accounts(app)
    assert sorted(roles.values()).count("admin") == 3 and sorted(roles.values()).count("eo") == 1
