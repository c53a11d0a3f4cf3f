"""TOTP secrets survive an encryption-key rotation (idp mfa rekey); SSO sessions end after the policy's
idle and absolute timeouts."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import pyotp
import time_machine
from click.testing import CliRunner

from idp.accounts.models import Account
from idp.extensions import db
from idp.mfa import totp
from idp.mfa.models import MfaMethod
from tests.support import make_account, sign_in


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_rekey_moves_totp_secrets_to_the_new_key(make_settings, settings):
    from idp import create_app
    from idp.cli import main

    old, new = _key(), _key()
    app = create_app(make_settings(mfa={"encryption_keys": old}))
    secret = pyotp.random_base32()
    with app.app_context():
        account = make_account(mfa=False)
        method = MfaMethod(id="m1", account_id=account.id, kind="totp")
        method.secret = totp.seal(secret, "m1")
        db.session.add(method)
        db.session.commit()
    rotated = make_settings(mfa={"encryption_keys": f"{new},{old}"})
    env = {"IDP_DATABASE_URL": rotated.database_url, "IDP_DATA_DIR": str(rotated.data_dir),
           "IDP_KEYS_DIR": str(rotated.keys_dir), "IDP_SECRET_KEY": "test-secret-key",
           "IDP_MFA_ENCRYPTION_KEYS": f"{new},{old}", "IDP_POLICIES_DIR": rotated.policies.dir,
           "IDP_ISSUER": "http://localhost", "IDP_LOGGING_LEVEL": "WARNING"}
    if rotated.store.redis_url:
        env.update(IDP_REDIS_URL=rotated.store.redis_url, IDP_STORE_PREFIX=rotated.store.prefix)
    result = CliRunner().invoke(main, ["mfa", "rekey"], env=env)
    assert result.exit_code == 0, result.output
    assert '"rekeyed": 1' in result.stdout
    only_new = create_app(make_settings(mfa={"encryption_keys": new}))
    with only_new.app_context():
        stored = db.session.get(MfaMethod, "m1")
        assert totp.unseal(stored.secret, "m1") == secret


def test_idle_and_absolute_session_timeouts(app, client):
    with app.app_context():
        make_account()
        rules = __import__("idp.policy", fromlist=["current"]).current().sec("session")
    with time_machine.travel(0, tick=True) as traveller:
        traveller.move_to("2026-11-23 09:00:00")
        assert sign_in(client).status_code == 303
        assert client.get("/account").status_code == 200
        traveller.shift(timedelta(seconds=rules.idle_timeout_seconds - 60))
        assert client.get("/account").status_code == 200  # still in use: the idle clock restarts
        traveller.shift(timedelta(seconds=rules.idle_timeout_seconds + 1))
        assert client.get("/account").status_code == 302  # idle too long
    other = app.test_client()
    with time_machine.travel(0, tick=True) as traveller:
        traveller.move_to("2026-11-24 09:00:00")
        assert sign_in(other).status_code == 303
        step = rules.idle_timeout_seconds // 2  # always active: never idle for long
        elapsed = 0
        while other.get("/account").status_code == 200:
            assert elapsed <= rules.absolute_timeout_seconds, "the session outlived its absolute timeout"
            traveller.shift(timedelta(seconds=step))
            elapsed += step
        assert elapsed > rules.absolute_timeout_seconds - step  # it ended for age, not idleness
        with app.app_context():
            assert db.session.query(Account).count() == 1
