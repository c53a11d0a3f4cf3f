"""Pages and emails in Welsh: ui_locales first (and remembered), then the account's language."""

from tests.support import _csrf


def test_ui_locales_cy_shows_welsh_and_is_remembered(client):
    page = client.get("/signin?ui_locales=cy")
    html = page.get_data(as_text=True)
    assert 'lang="cy"' in html and "Mewngofnodi" in html and "Cyfeiriad e-bost" in html
    step = client.post("/signin", data={"email": "a@b.example", "csrf_token": _csrf(html)})
    assert "Rhowch eich cyfrinair" in client.get(step.location).get_data(as_text=True)


def test_browser_language_used_without_ui_locales(client):
    html = client.get("/signin", headers={"Accept-Language": "cy-GB,cy;q=0.9"}).get_data(as_text=True)
    assert "Mewngofnodi" in html


def test_english_by_default(client):
    html = client.get("/signin").get_data(as_text=True)
    assert 'lang="en"' in html and "Sign in" in html and "Mewngofnodi" not in html


def test_invite_email_in_the_accounts_language(app):
    import email
    import email.policy

    from idp.accounts.emails import send_invite
    from idp.admin import people
    from tests.support import make_centre

    with app.app_context():
        make_centre("54321")
        people.invite(people.operator(), email="cy@ysgol.example", role="eo", centre="54321",
                        fields={"given_name": "Siân", "family_name": "Jones", "language": "cy"}, send=send_invite)
    outbox = app.config["IDP_SETTINGS"].mail_outbox_dir
    message = email.message_from_bytes(next(outbox.glob("*.eml")).read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    assert "Helo Siân," in text and "Cyfrinair dros dro:" in text
    assert message["Subject"].startswith("Rydych")


def test_signed_in_persons_language_preference_is_used(app, client):
    from tests.support import make_account, sign_in

    with app.app_context():
        make_account(language="cy")
    assert sign_in(client).status_code == 303
    html = client.get("/account").get_data(as_text=True)
    assert 'lang="cy"' in html and "Fy nghyfrif" in html
    assert 'lang="en"' in client.get("/account?ui_locales=en").get_data(as_text=True)  # ui_locales wins


def _words(response) -> str:
    import html
    import re

    page = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_my_account_dates_are_welsh_and_in_uk_time(app, client):
    from zoneinfo import ZoneInfo

    from babel.dates import get_month_names
    from sqlalchemy import select

    from idp.accounts.models import Account
    from idp.extensions import db
    from idp.mfa.models import MfaMethod
    from tests.support import make_account, sign_in

    with app.app_context():
        make_account(language="cy")
    assert sign_in(client).status_code == 303
    with app.app_context():
        account = db.session.scalar(select(Account))
        used = db.session.scalar(select(MfaMethod.last_used_at).where(MfaMethod.account_id == account.id))
    used = used.astimezone(ZoneInfo("Europe/London"))  # the passkey just used to sign in
    welsh = get_month_names("wide", locale="cy")[used.month]
    # the second factors' "last used", and the sessions' "last active", in Welsh and London time
    assert f"{used.day} {welsh} {used.year}, {used:%H:%M}" in _words(client.get("/account/mfa"))
    assert f"{used.day} {welsh} {used.year}" in _words(client.get("/account"))


def test_wtforms_own_messages_are_welsh_on_welsh_pages(app, client):
    from tests.support import _csrf, make_account, sign_in

    with app.app_context():
        make_account(language="cy")
    assert sign_in(client).status_code == 303
    page = client.get("/account/profile").get_data(as_text=True)
    refused = client.post("/account/profile", data={"given_name": "Siân", "family_name": "Jones", "language": "fr",
                                                    "csrf_token": _csrf(page)})
    words = _words(refused)
    assert refused.status_code == 400 and "Nid yw hwn yn ddewis dilys." in words and "Not a valid choice" not in words
