"""My account: a person edits their own details; bad input is a form message and changes nothing."""

from idp.accounts.models import Account
from idp.extensions import db
from tests.support import _csrf, make_account, sign_in


def test_edit_own_details(app, client):
    with app.app_context():
        make_account()
    assert sign_in(client).status_code == 303
    page = client.get("/account/profile").get_data(as_text=True)
    assert 'value="Ada"' in page
    done = client.post("/account/profile", data={
        "csrf_token": _csrf(page), "title": "Dr", "given_name": "Ada", "family_name": "King",
        "job_role": "Exams Officer", "language": "cy", "phone": "+447700900123"})
    assert done.status_code == 303
    with app.app_context():
        account = db.session.query(Account).one()
        assert (account.title, account.family_name, account.language, account.phone) == \
            ("Dr", "King", "cy", "+447700900123")
    bad = client.post("/account/profile?ui_locales=en", data={
        "csrf_token": _csrf(page), "given_name": "Ada", "family_name": "King", "language": "cy",
        "phone": "07700 90012"})
    assert bad.status_code == 400 and "not a valid phone number" in bad.get_data(as_text=True)
    wrong_language = client.post("/account/profile", data={
        "csrf_token": _csrf(page), "given_name": "Ada", "family_name": "King", "language": "fr"})
    assert wrong_language.status_code == 400
    with app.app_context():
        assert db.session.query(Account).one().phone == "+447700900123"
    assert client.post("/account/profile", data={"given_name": "X", "family_name": "Y"}).status_code == 400


def test_profile_page_needs_a_session(client):
    assert client.get("/account/profile").status_code == 302
