"""The board console in Welsh: its pages, the policy's reasons for what someone may not do (with
the account types' Welsh names), the helpdesk's refusals, and dates with Welsh month names."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import get_month_names

from idp.admin import people
from tests.integration.board.conftest import HELPDESK, USER, text_of
from tests.support import sign_in


def test_the_helpdesk_pages_are_welsh(app, browser_for, people_here):
    assert sign_in(app.test_client(), USER).status_code == 303  # a last sign-in to show
    helpdesk = browser_for(HELPDESK)
    home = helpdesk.page("/board/people?ui_locales=cy")
    assert 'lang="cy"' in home and "Desg gymorth: dod o hyd i berson" in text_of(home)
    assert "Cafwyd hyd i 6 o bobl" in text_of(helpdesk.page("/board/people?q=lovelace"))
    page = text_of(helpdesk.page(f"/board/people/{people_here[USER]}"))
    # what the helpdesk cannot do, and the policy's reason in Welsh, with the types' Welsh names
    assert "Ailosod yr ail ffactor: Ni all cyfrifon Desg gymorth ailosod ail ffactor cyfrifon Defnyddiwr." in page
    with app.app_context():
        signed = people.account_by_email(USER).last_sign_in_at.astimezone(ZoneInfo("Europe/London"))
    month = get_month_names("wide", locale="cy")[signed.month]
    assert f"{signed.day} {month} {signed.year} am {signed:%H:%M}" in page, page
    # a refusal of the administration service: the invite was accepted long ago
    refused = helpdesk.get(f"/board/people/{people_here[USER]}/resend", status=409)
    assert "Mae'r person hwn eisoes wedi derbyn ei wahoddiad." in text_of(refused.get_data(as_text=True))
