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
    from idp.admin import centres as admin_centres, errors as admin_errors, people
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
