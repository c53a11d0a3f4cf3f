"""`idp db purge` deletes what nothing can use any more and keeps what a check still needs: a grant's
refresh tokens go only when all of them have expired (a rotated token presented again while its
successor lives must still end the grant), sessions a week after they ended or timed out, expired
remembered devices and initial access tokens, failure counters that hold nothing. Large backlogs go
in batches."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from idp.accounts.models import AttemptCounter, RememberedDevice, SsoSession
from idp.admin import housekeeping
from idp.clock import utcnow
from idp.extensions import db, store
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


# ------------------------------------------------------------------ the server's own schedule
def _finished_grant_left(app) -> bool:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RefreshToken)
                                 .where(RefreshToken.grant_id == "finished-grant")) > 0


def test_a_serving_process_purges_on_its_own(make_settings, monkeypatch):
    """Built in a process ``idp serve`` (or gunicorn's hooks) started, the app keeps house: the
    finished grant goes without anyone running ``idp db purge``."""
    from idp import config, create_app

    monkeypatch.setattr(housekeeping.PurgeSchedule, "CHECK_EVERY", 0.05)
    monkeypatch.setenv(config.SERVING_ENV, "1")
    served = create_app(make_settings(housekeeping={"purge_every_minutes": 1}))
    try:
        _setting_up(served)
        assert served in housekeeping.PurgeSchedule._apps
        with served.app_context():
            housekeeping.PURGE_TURN.delete("turn")  # the purge its start ran: an interval ago
        deadline = time.monotonic() + 10
        while _finished_grant_left(served) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _finished_grant_left(served)
    finally:
        housekeeping.PurgeSchedule._apps.discard(served)
        served.extensions["idp.db"].dispose()
        served.extensions["idp.store"].close()


def test_an_app_not_serving_or_told_never_keeps_house(make_settings, monkeypatch):
    from idp import config, create_app

    monkeypatch.delenv(config.SERVING_ENV, raising=False)
    built = [create_app(make_settings())]
    monkeypatch.setenv(config.SERVING_ENV, "1")
    built.append(create_app(make_settings(housekeeping={"purge_every_minutes": 0})))
    try:
        assert not any(app in housekeeping.PurgeSchedule._apps for app in built)
    finally:
        for app in built:
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()


@pytest.mark.shared_store
def test_of_many_processes_asking_at_once_one_purges_per_interval(app, make_settings, monkeypatch):
    """Ten threads of two apps sharing the database and Redis (two processes' worth) ask for the
    turn at the same moment: one purge runs; asking again within the interval runs none."""
    from idp import create_app

    shared = app.config["IDP_SETTINGS"]
    other = create_app(make_settings(store={"redis_url": shared.store.redis_url, "prefix": shared.store.prefix}))
    ran = []
    real_purge = housekeeping.purge
    monkeypatch.setattr(housekeeping, "purge", lambda: ran.append(1) or real_purge())
    _setting_up(app)
    start = threading.Barrier(10)
    answers = []

    def ask(which):
        with which.app_context():
            start.wait()
            answers.append(housekeeping.purge_if_due())

    try:
        threads = [threading.Thread(target=ask, args=(app if n % 2 else other,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ran) == 1 and sum(answer is not None for answer in answers) == 1
        assert not _finished_grant_left(app)
        with other.app_context():
            assert housekeeping.purge_if_due() is None and len(ran) == 1
            assert 3500 < store.ttl(housekeeping.PURGE_TURN.key("turn")) <= 3600  # the default hour
    finally:
        other.extensions["idp.db"].dispose()
        other.extensions["idp.store"].close()


def test_a_store_that_cannot_say_whose_turn_it_is_purges_nothing(app, monkeypatch):
    from idp.store import StoreUnavailable

    def down(*_args, **_kwargs):
        raise StoreUnavailable("Redis: ConnectionError")

    _setting_up(app)
    monkeypatch.setattr(app.extensions["idp.store"], "add", down)
    with app.app_context():
        assert housekeeping.purge_if_due() is None
    assert _finished_grant_left(app)
