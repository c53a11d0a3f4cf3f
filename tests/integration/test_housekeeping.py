"""`idp db purge` deletes what nothing can use any more and keeps what a check still needs: a grant's
refresh tokens go only when all of them have expired (a rotated token presented again while its
successor lives must still end the grant), sessions a week after they ended or timed out, expired
remembered devices and initial access tokens, failure counters that hold nothing. Large backlogs go
in batches."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import func, select

from idp.accounts.models import AttemptCounter, RememberedDevice, SsoSession
from idp.admin import housekeeping
from idp.clock import utcnow
from idp.extensions import db
from idp.oidc import tokens
from idp.oidc.models import InitialAccessToken, RefreshToken
from tests.support import make_account, make_client

DAY = 86400


def _refresh(account, client, grant: str, value: str, *, expires_in: int, rotated: bool = False) -> None:
    now = int(time.time())
    db.session.add(RefreshToken(token_hash=tokens.hash_refresh(value), grant_id=grant, client_id=client.client_id,
                                account_id=account.id, scope="openid", auth_time=now - 100, amr=["pwd"], acr="",
                                issued_at=now - 100, expires_at=now + expires_in,
                                rotated_at=now - 50 if rotated else None))


def _session(account, name: str, **times) -> None:
    now = utcnow()
    db.session.add(SsoSession(id_hash=name.ljust(64, "0"), sid=name.ljust(43, "s"), account_id=account.id,
                              auth_time=int(time.time()), amr=["pwd"], created_at=times.get("created", now),
                              last_seen_at=times.get("seen", now), ended_at=times.get("ended")))


def _counts() -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (RefreshToken, SsoSession, RememberedDevice, InitialAccessToken, AttemptCounter)}


def _setting_up(app):
    now, epoch = utcnow(), int(time.time())
    with app.app_context():
        account = make_account()
        client = make_client()
        # a live grant whose first token was used (rotated) and has expired: both stay
        _refresh(account, client, "live-grant", "old-expired", expires_in=-10, rotated=True)
        _refresh(account, client, "live-grant", "successor", expires_in=3600)
        # a finished grant: every token expired
        for n in range(3):
            _refresh(account, client, "finished-grant", f"done-{n}", expires_in=-10 - n, rotated=n > 0)
        _session(account, "live")
        _session(account, "ended-recently", ended=now - timedelta(hours=1))
        _session(account, "ended-long-ago", ended=now - timedelta(days=8))
        _session(account, "timed-out-long-ago", created=now - timedelta(days=9), seen=now - timedelta(days=9))
        for name, expires in (("device-live", now + timedelta(days=3)), ("device-gone", now - timedelta(seconds=1))):
            db.session.add(RememberedDevice(account_id=account.id, token_hash=name.ljust(64, "0"),
                                            expires_at=expires))
        for name, expires, uses in (("iat-live", now + timedelta(days=1), 1), ("iat-expired", now - timedelta(1), 1),
                                    ("iat-used", now + timedelta(days=1), 0)):
            db.session.add(InitialAccessToken(token_hash=name.ljust(64, "0"), created_by="test", expires_at=expires,
                                              uses_left=uses))
        for key, failures, locked_until in (("counting", 2, None), ("locked", 0, epoch + 600),
                                            ("lock-over", 0, epoch - 1), ("empty", 0, None)):
            db.session.add(AttemptCounter(key=key, failures=failures, locked_until=locked_until, updated_at=epoch - DAY))
        db.session.commit()
        return client


def test_purge_deletes_only_what_nothing_can_use(app, client):
    rp = _setting_up(app)
    with app.app_context():
        assert housekeeping.purge() == {"refresh_tokens": 3, "sso_sessions": 2, "remembered_devices": 1,
                                        "initial_access_tokens": 2, "attempt_counters": 2}
        assert _counts() == {"refresh_tokens": 2, "sso_sessions": 2, "remembered_devices": 1,
                             "initial_access_tokens": 1, "attempt_counters": 2}
        assert {s.id_hash.rstrip("0") for s in db.session.scalars(select(SsoSession))} == {"live", "ended-recently"}
        assert set(db.session.scalars(select(AttemptCounter.key))) == {"counting", "locked"}
        assert housekeeping.purge() == dict.fromkeys(_counts(), 0)  # nothing left to do

    # the live grant kept its used token: presenting it again is still reuse, and ends the grant
    basic = base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()
    reused = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": "old-expired"},
                         headers={"Authorization": f"Basic {basic}"})
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    with app.app_context():
        successor = db.session.get(RefreshToken, tokens.hash_refresh("successor"))
        assert successor.revoked_at is not None


def test_a_backlog_goes_in_batches(app, monkeypatch):
    monkeypatch.setattr(housekeeping, "BATCH", 3)
    monkeypatch.setattr(housekeeping, "GRANT_BATCH", 2)
    with app.app_context():
        account = make_account()
        client = make_client()
        for n in range(10):
            db.session.add(RememberedDevice(account_id=account.id, token_hash=f"d{n}".ljust(64, "0"),
                                            expires_at=utcnow() - timedelta(seconds=1)))
        for grant in range(5):
            for n in range(3):
                _refresh(account, client, f"grant-{grant}", f"g{grant}-{n}", expires_in=-1 - n, rotated=n > 0)
        _refresh(account, client, "alive", "alive-0", expires_in=60)
        db.session.commit()
        purged = housekeeping.purge()
        assert (purged["remembered_devices"], purged["refresh_tokens"]) == (10, 15)
        assert (_counts()["remembered_devices"], _counts()["refresh_tokens"]) == (0, 1)


def test_idp_db_purge_prints_what_it_deleted(app, settings):
    _setting_up(app)
    env = {k: None for k in os.environ if k.startswith("IDP_") and not k.startswith("IDP_TEST_")}
    env.update(IDP_DATABASE_URL=settings.database_url, IDP_DATA_DIR=str(settings.data_dir),
               IDP_KEYS_DIR=str(settings.keys_dir), IDP_SECRET_KEY="test-secret-key", IDP_ISSUER="http://localhost",
               IDP_LOGGING_LEVEL="WARNING", IDP_POLICIES_DIR=settings.policies.dir)
    if settings.store.redis_url:
        env.update(IDP_REDIS_URL=settings.store.redis_url, IDP_STORE_PREFIX=settings.store.prefix)
    from idp.cli import main

    done = CliRunner().invoke(main, ["db", "purge"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["refresh_tokens"] == 3
