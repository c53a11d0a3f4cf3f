"""The board console in Welsh: its pages, the policy's reasons for what someone may not do (with
the account types' Welsh names), the helpdesk's refusals, and dates with Welsh month names."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import get_month_names

from idp.admin import people
from tests.integration.board.conftest import BOARD, HELPDESK, USER, text_of
from tests.integration.board.test_board_clients import FORM
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


def test_the_registrys_refusals_are_welsh_on_the_board_console(app, browser_for, people_here):
    board = browser_for(BOARD)
    board.page("/board/services?ui_locales=cy")
    for change, field, words in (
            ({"redirect_uris": "http://results.example/cb"}, "redirect_uris",
             "redirect_uri: rhaid iddo ddefnyddio https (http dim ond ar gyfer localhost/loopback): "
             "http://results.example/cb"),
            ({"backchannel_logout_uri": "https://10.1.2.3/logout"}, "backchannel_logout_uri",
             "backchannel_logout_uri: rhaid iddo beidio â phwyntio at gyfeiriad loopback")):
        refused = board.submit("/board/services/new", {**FORM, **change}, status=400)
        page = refused.get_data(as_text=True)
        assert words in text_of(page), text_of(page)[:1500]
        assert f'href="#{field}"' in page  # still found its field, from the registry's English


def test_table_headings_hidden_from_sight_are_markup_not_text(app, browser_for, people_here):
    # "<span class=govuk-visually-hidden>" ~ _("Actions"): the message is Markup, so the literal
    # tags must be marked safe or they are escaped and shown
    board = browser_for(BOARD)
    board.page("/board?ui_locales=cy")
    for path in ("/board/keys", "/board/staff"):
        page = board.page(path)
        assert "&lt;span" not in page and '<span class="govuk-visually-hidden">Camau</span>' in page, path
