"""``email_verified`` says whether the person has shown they read mail at their address: after they
accept the invite sent there, use a password-reset code sent there, or confirm their own change of
address with a code. An address someone else typed in (an invite not yet accepted, an address an
admin changed) is not verified, in the ID token and at UserInfo, until the person does one of those."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.admin import people
from idp.extensions import db
from tests.support import PASSWORD, add_passkey, code_flow, make_account, make_client

EO, USER = "eo@centre.example", "grace@centre.example"
NEW_PASSWORD = "a quite different passphrase 42"


def _verified(app, rp, email: str, password: str) -> tuple[bool, bool]:
    """(the ID token's email_verified, UserInfo's) for a fresh sign-in."""
    http = app.test_client()
    tokens = code_flow(http, rp, scope="openid email", email=email, password=password)
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert id_token["email"] == info["email"] == email
    return id_token["email_verified"], info["email_verified"]


def test_an_address_someone_else_typed_is_verified_once_the_person_reads_mail_there(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email")
    sub = kit.invite(app, USER)
    assert kit.account_row(app, USER)["email_verified"] is False  # the EO typed it
    # accepting the invite: the temporary password was read at the address
    person = browser(app)
    assert person.sign_in(USER, kit.temporary_password(smtp.take(USER, kit.INVITE_SUBJECT))).status_code == 303
    assert person.new_password(PASSWORD).status_code == 303
    assert kit.account_row(app, USER)["email_verified"] is True

    # the EO changes it: not verified any more, whatever the person did before
    with app.app_context():
        eo = people.party_of(people.account_by_email(EO))
        people.change_email(eo, sub, "grace.hopper@centre.example")
        add_passkey(people.account_by_email("grace.hopper@centre.example"))
        db.session.commit()
    time.sleep(1.05)  # the change revoked what was issued up to its second (idp.accounts.access)
    assert _verified(app, rp, "grace.hopper@centre.example", PASSWORD) == (False, False)
    # a password reset by the code sent there: verified again
    person = browser(app)
    person.forgot("grace.hopper@centre.example")
    code = kit.reset_code(smtp.take("grace.hopper@centre.example", kit.RESET_SUBJECT))
    assert person.reset(code, NEW_PASSWORD).status_code == 303
    time.sleep(1.05)  # as did the reset
    assert _verified(app, rp, "grace.hopper@centre.example", NEW_PASSWORD) == (True, True)
