"""The console invite steps' refusals are audited once each, as the admin API's invite is; a form
error that refuses nothing (a taken address, no type chosen) is not (found by an outside probe:
the check step's refusal was audited twice, once more as the page was drawn again)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.admin import people
from idp.audit import AuditEvent
from idp.extensions import db
from tests.integration.console.conftest import ADMIN, EO

pytestmark = pytest.mark.one_backend

NEWCOMER = "new.starter@centre.example"
DETAILS = {"title": "Dr", "given_name": "Mary", "family_name": "Somerville", "email": NEWCOMER,
           "role": "user", "language": "en"}


def _refusals(app, actor: str) -> list[tuple]:
    with app.app_context():
        return [(e.event, e.details.get("reason")) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.outcome == "denied", AuditEvent.actor == actor)
            .order_by(AuditEvent.id))]


def test_a_form_error_at_the_first_step_is_not_audited_as_a_refusal(mail_app, signed_in, staff, pages):
    """Attack: the first step posted with an address already taken (Conflict) and with no account
    type chosen that exists (Invalid). Should: these are answers to correct, not refusals of the
    policy: nothing in the audit trail as ``denied`` (``all_or_nothing`` audits a Denied only)."""
    eo = signed_in(EO)
    before = _refusals(mail_app, staff.sub[EO])
    taken = pages.post(eo, "/users/invite", {**DETAILS, "email": ADMIN})
    assert taken.status_code in (400, 409)
    no_type = pages.post(eo, "/users/invite", {**DETAILS, "role": "nonsense"})
    assert no_type.status_code in (200, 400)
    assert _refusals(mail_app, staff.sub[EO]) == before


def test_the_access_steps_refusal_is_audited_once(mail_app, signed_in, staff, pages):
    """Attack: the access step posted with a profile a User account cannot have. Should: one
    ``account.invited`` denied row for the one refusal (the re-rendered page asks again what an
    empty choice would grant, which must not add a row)."""
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", DETAILS)
    before = _refusals(mail_app, staff.sub[EO])
    refused = pages.post(eo, "/users/invite/access", {"profiles": ["a2c_keys"]})
    assert refused.status_code in (400, 403)
    added = _refusals(mail_app, staff.sub[EO])[len(before):]
    assert [event for event, _ in added] == ["account.invited"]


def test_a_refusal_at_the_check_step_is_audited_once(mail_app, signed_in, staff, pages):
    """Attack: an Admin fills in an invite giving a profile they hold (iamis) and reaches the check
    step; meanwhile the Exams Officer takes that profile from the Admin; the Admin presses "Send
    invite". ``people.invite`` refuses ("you do not have it yourself") and its action audits the
    refusal; the page is then drawn again, and drawing it calls ``directory.invite_profiles`` with
    the same profiles, which (since 91b6c8e wrapped it in ``all_or_nothing``) audits the same
    refusal a second time.

    Should: one attempt refused, one ``account.invited`` denied row (commit 91b6c8e: the console's
    invite steps audit their refusals "as the admin API's invite does", and the API's invite
    records one row per refused invite). Happens: two rows, each spending the actor's refusal
    budget (``[rate_limits] refused_admin_actions_per_account``) twice as fast."""
    admin = signed_in(ADMIN)
    pages.post(admin, "/users/invite", DETAILS)
    assert pages.post(admin, "/users/invite/access", {"profiles": ["resources", "iamis"]}).status_code == 303
    check = admin.get("/users/invite/check")
    assert check.status_code == 200
    with mail_app.app_context():
        held = people.party_of(people.account_by_email(ADMIN)).profiles
        people.set_profiles(people.party_of(people.account_by_email(EO)), staff.sub[ADMIN],
                            sorted(held - {"iamis"}))
        db.session.remove()
    before = _refusals(mail_app, staff.sub[ADMIN])
    refused = pages.post(admin, "/users/invite/check", {}, page=check)
    assert refused.status_code == 403, refused.status_code
    assert pages.row(mail_app, NEWCOMER) is None  # nobody invited
    added = _refusals(mail_app, staff.sub[ADMIN])[len(before):]
    assert [event for event, _ in added] == ["account.invited"], added
