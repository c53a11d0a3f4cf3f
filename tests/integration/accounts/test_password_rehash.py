"""Passwords are re-hashed at the next successful sign-in when the policy's argon2 parameters
change (DESIGN.md §1 Passwords; policies/security.toml [password])."""

from __future__ import annotations

import shutil

from argon2 import PasswordHasher

from idp import policy
from tests.support import PASSWORD, make_account

ADA = "ada@centre.example"


def test_password_rehashed_on_sign_in_when_argon2_parameters_change(make_settings, tmp_path, browser, kit):
    # an account hashed under the shipped policy (m=19456, t=2, p=1)
    first = kit.build_app(make_settings(policies={"dir": ""}))
    with first.app_context():
        make_account(ADA)
    old_hash = kit.account_row(first, ADA)["password_hash"]
    assert old_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    first.extensions["idp.db"].dispose()
    first.extensions["idp.store"].close()

    # the operator changes the parameters; the same database
    folder = tmp_path / "policies"
    shutil.copytree(policy.default_dir(), folder)
    security = folder / "security.toml"
    text = security.read_text()
    changed = text.replace("argon2_memory_kib = 19456", "argon2_memory_kib = 12288") \
                  .replace("argon2_time_cost = 2", "argon2_time_cost = 3")
    assert changed != text
    security.write_text(changed)
    app = kit.build_app(make_settings(policies={"dir": str(folder)}))
    try:
        # a wrong password changes nothing
        refused = browser(app).sign_in(ADA, "not the password")
        assert refused.status_code == 400
        assert kit.account_row(app, ADA)["password_hash"] == old_hash

        # the right one signs in and re-hashes at the new parameters
        step = browser(app).sign_in(ADA, PASSWORD)
        assert step.status_code == 303, kit.messages(step)
        new_hash = kit.account_row(app, ADA)["password_hash"]
        assert new_hash.startswith("$argon2id$v=19$m=12288,t=3,p=1$"), new_hash
        assert PasswordHasher().verify(new_hash, PASSWORD)

        # and only once
        assert browser(app).sign_in(ADA, PASSWORD).status_code == 303
        assert kit.account_row(app, ADA)["password_hash"] == new_hash
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
