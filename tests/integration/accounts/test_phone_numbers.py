"""Phone numbers as people type them: "Edit your details", the service every door uses (the API and
the command line go through it) and the SMS second factor all accept a UK number written any usual
way and store it as E.164, and refuse what is not a number with a message a person can act on."""

from __future__ import annotations

import json

import pytest

from idp.accounts.models import Account
from idp.admin import errors, people
from idp.extensions import db
from tests.support import PASSWORD, _csrf, make_account, sign_in

# one backend: how a typed phone number is read: parsing, not storage
pytestmark = pytest.mark.one_backend

TYPED = ["07700 900123", "+44 7700 900123", "(07700) 900 123", "+44 (0)7700 900123", "0044 7700 900123",
         "07700-900-123", " 07700900123 "]
#: (typed, words the refusal contains)
REFUSED = [
    ("07700 90012", "not a valid phone number"),          # a digit short of a mobile number
    ("07700 9001234", "too long"),
    ("0770O 900123", "Enter a phone number, like"),        # a letter O for a zero: never quietly dropped
    ("07700 900123 ext 2", "Enter a phone number, like"),
    ("+999 1234 5678", "country code"),
    ("<b>0</b>", "Enter a phone number, like"),
    ("12", "too short"),
    ("+44+7700900123", "Enter a phone number, like"),
]


def _details(http, phone: str, lang: str = "en"):
    page = http.get(f"/account/profile?ui_locales={lang}").get_data(as_text=True)
    return http.post("/account/profile", data={"csrf_token": _csrf(page), "given_name": "Ada",
                                               "family_name": "Lovelace", "language": "en", "phone": phone})


def _stored_phone(app) -> str:
    with app.app_context():
        return db.session.query(Account).one().phone


@pytest.mark.parametrize("typed", TYPED)
def test_edit_your_details_takes_a_uk_number_as_typed_and_stores_e164(app, client, typed):
    with app.app_context():
        make_account()
    assert sign_in(client).status_code == 303
    saved = _details(client, typed)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert _stored_phone(app) == "+447700900123"
    # an international number keeps its own country code; an empty field clears the number
    assert _details(client, "+353 85 123 4567").status_code == 303 and _stored_phone(app) == "+353851234567"
    assert _details(client, "").status_code == 303 and _stored_phone(app) == ""


@pytest.mark.parametrize("typed,told", REFUSED)
def test_edit_your_details_refuses_what_is_not_a_number(app, client, typed, told):
    with app.app_context():
        make_account(phone="+447700900999")
    assert sign_in(client).status_code == 303
    refused = _details(client, typed)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and told in page
    assert 'href="#phone"' in page  # the error summary leads to the field
    assert "<b>0</b>" not in page
    assert _stored_phone(app) == "+447700900999"  # nothing changed


def test_a_pasted_essay_is_refused_before_any_parsing(app, client):
    with app.app_context():
        make_account()
    assert sign_in(client).status_code == 303
    assert _details(client, "0" * 10_000).status_code == 400
    # the service on its own (the API's door): refused without parsing
    with app.app_context(), pytest.raises(errors.Invalid) as refused:
        people.clean_fields({"phone": "7" * 10_000}, partial=True)
    assert refused.value.field == "phone" and "too long" in refused.value.message


def test_the_service_stores_e164_whichever_door_the_number_came_through(app):
    with app.app_context():
        account = make_account()
        changed = people.update_fields(people.operator(), account.sub, {"phone": "(07700) 900 123"})
        assert changed.phone == "+447700900123"
        with pytest.raises(errors.Invalid) as refused:
            people.update_fields(people.operator(), account.sub, {"phone": "0770090012"})
        # outside a request (the command line) the message is the English one
        assert refused.value.field == "phone" and refused.value.message.startswith("This is not a valid phone")
        assert db.session.get(Account, account.id).phone == "+447700900123"


def _to_sms_setup(http, email: str) -> str:
    page = http.get("/signin")
    step = http.post("/signin", data={"email": email, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    return http.get("/signin/mfa/setup/sms").get_data(as_text=True)


def _texts(app) -> list[dict]:
    folder = app.config["IDP_SETTINGS"].sms_outbox_dir
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


@pytest.mark.parametrize("typed", ["(07700) 900 123", "+44 7700 900123"])
def test_the_sms_second_factor_takes_the_number_as_typed(app, client, typed):
    with app.app_context():
        make_account(email="sms@centre.example", mfa=False)
    page = _to_sms_setup(client, "sms@centre.example")
    sent = client.post("/signin/mfa/setup/sms", data={"action": "send", "phone": typed, "csrf_token": _csrf(page)})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    assert [t["to"] for t in _texts(app)] == ["+447700900123"]
    code = _texts(app)[0]["text"].split("code is ", 1)[1].split(".")[0]
    done = client.post("/signin/mfa/setup/sms", data={"action": "confirm", "code": code, "csrf_token": _csrf(page)})
    assert done.status_code == 303
    from idp.mfa.models import MfaMethod

    with app.app_context():
        assert db.session.query(MfaMethod).one().phone == "+447700900123"


@pytest.mark.parametrize("typed,told", [("020 7946 0018", "Enter a mobile phone number"),
                                        ("07700 90012", "not a valid phone number"),
                                        ("call me", "Enter a phone number, like")])
def test_the_sms_second_factor_refuses_landlines_and_non_numbers(app, client, typed, told):
    with app.app_context():
        make_account(email="sms@centre.example", mfa=False)
    page = _to_sms_setup(client, "sms@centre.example")
    refused = client.post("/signin/mfa/setup/sms", data={"action": "send", "phone": typed, "csrf_token": _csrf(page)})
    assert refused.status_code == 400 and told in refused.get_data(as_text=True)
    assert _texts(app) == []  # nothing was sent
