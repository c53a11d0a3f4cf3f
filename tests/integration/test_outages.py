"""Outages fail closed, politely, and end by themselves: with Redis or PostgreSQL gone mid-test,
sign-in pages, the admin API and the protocol endpoints answer 503 with Retry-After (a page, a
problem document, an OAuth error), /readyz says 503, nothing is half-written, and once the
backend is back the same app serves again without a restart."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from idp import create_app
from idp.accounts.models import Account
from idp.extensions import db
from tests.support import ADMIN_API_SCOPE, PASSWORD, _csrf, code_flow, make_account, make_admin_client
from tests.tcp_proxy import TcpProxy

EO = "eo@centre.example"
NEW = {"email": "new.person@centre.example", "role": "user", "centre": "12345", "given_name": "New",
       "family_name": "Person"}


class RedisServer:
    """A redis-server of this test's own on a free port, stopped and started at will."""

    def __init__(self, port: int) -> None:
        self.port, self.proc = port, None

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sign_in_to_password_step(http):
    page = http.get("/signin")
    step = http.post("/signin", data={"email": EO, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.status_code == 303, step.status_code
    return _csrf(http.get("/signin/password").get_data(as_text=True))


def _assert_unavailable_page(response):
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.headers["Retry-After"].isdigit()
    assert "Sorry, the service is unavailable" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def _accounts(app) -> list[str]:
    with app.app_context():
        return sorted(a.email for a in db.session.query(Account))


@pytest.fixture
def redis_server():
    server = RedisServer(_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def on_own_redis(make_settings, redis_server):
    """An app on the test's own Redis, with an Exams Officer, an admin-API client and a token of
    theirs: (app, client, token)."""
    app = create_app(make_settings(store={"redis_url": f"redis://127.0.0.1:{redis_server.port}/0"}))
    app.config["TESTING"] = True
    try:
        with app.app_context():
            make_account(EO)
            rp = make_admin_client()
        yield app, rp, code_flow(app.test_client(), rp, scope=ADMIN_API_SCOPE, email=EO)["access_token"]
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


@pytest.fixture
def behind_a_proxy(make_settings, redis_server):
    """``make(**sections)`` -> (app, proxy): an app on the test's own Redis through a proxy the test
    can cut at a chosen moment (a method monkeypatched to cut it first); each torn down after."""
    made = []

    def make(**sections):
        proxy = TcpProxy("127.0.0.1", redis_server.port)
        app = create_app(make_settings(store={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"}, **sections))
        app.config["TESTING"] = True
        made.append((app, proxy))
        return app, proxy

    yield make
    for app, proxy in made:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
        proxy.close()


def _sign_out_everywhere(http):
    return http.post("/signout", data={"everywhere": "1",
                                       "csrf_token": _csrf(http.get("/account").get_data(as_text=True))})


def test_redis_down_means_503_everywhere_then_service_resumes(on_own_redis, redis_server):
    app, rp, token = on_own_redis
    browser = app.test_client()
    csrf = _sign_in_to_password_step(browser)

    redis_server.stop()
    _assert_unavailable_page(browser.post("/signin/password", data={"password": PASSWORD, "csrf_token": csrf}))
    newcomer = app.test_client()
    page = newcomer.get("/signin")  # a page that needs nothing from the store is still served
    assert page.status_code == 200
    _assert_unavailable_page(newcomer.post("/signin", data={"email": EO, "csrf_token": _csrf(page.get_data(as_text=True))}))
    api = app.test_client().post("/api/v1/accounts", json=NEW, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 503 and api.mimetype == "application/problem+json" and api.headers["Retry-After"]
    refresh = app.test_client().post("/token", data={"grant_type": "authorization_code", "code": "x" * 43,
                                                     "redirect_uri": rp.redirect_uri},
                                     auth=(rp.client_id, rp.client_secret))
    assert refresh.status_code == 503 and refresh.get_json()["error"] == "temporarily_unavailable"
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["store"] == "unreachable"
    assert _accounts(app) == [EO]  # the invite asked for during the outage did not happen

    redis_server.start()  # a fresh Redis: what it held is gone, the app reconnects by itself
    assert app.test_client().get("/readyz").status_code == 200
    # with it went any revocation of the token issued before: that token is refused now
    # (idp.records.STORE_FORGOT), as is anything issued in the second the loss was found
    old = app.test_client().get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401, old.get_data(as_text=True)
    time.sleep(1.05)
    browser = app.test_client()
    csrf = _sign_in_to_password_step(browser)
    step = browser.post("/signin/password", data={"password": PASSWORD, "csrf_token": csrf})
    assert step.status_code == 303 and step.location.endswith("/signin/mfa")
    token = code_flow(app.test_client(), rp, scope=ADMIN_API_SCOPE, email=EO)["access_token"]
    created = app.test_client().post("/api/v1/accounts", json=NEW, headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.get_json()


@pytest.mark.shared_store  # one backend is enough: the Redis is the test's own either way
def test_a_redis_that_hangs_holds_no_request(on_own_redis, redis_server):
    """A Redis that stops answering without closing its connections (paused, or cut off by the
    network) is given up after the store's socket timeout, by the store and by the rate limiter
    alike: 503, not a request that never ends and a server whose threads all wait on it."""
    app, rp, token = on_own_redis
    browser = app.test_client()
    csrf = _csrf(browser.get("/signin").get_data(as_text=True))
    introspect = {"data": {"token": token}, "auth": (rp.client_id, rp.client_secret)}
    assert app.test_client().post("/introspect", **introspect).get_json()["active"]

    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            email_step = pool.submit(browser.post, "/signin", data={"email": EO, "csrf_token": csrf})
            introspection = pool.submit(app.test_client().post, "/introspect", **introspect)
            # bounded by the socket timeout (store.SOCKET_TIMEOUT); the bound here only stops a hang
            _assert_unavailable_page(email_step.result(timeout=60))
            answer = introspection.result(timeout=60)
        assert answer.status_code == 503 and answer.get_json()["error"] == "temporarily_unavailable"
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    assert app.test_client().post("/introspect", **introspect).get_json()["active"]
    step = browser.post("/signin", data={"email": EO, "csrf_token": csrf})
    assert step.status_code == 303 and step.location.endswith("/signin/password")


@pytest.mark.shared_store  # PostgreSQL's connections, through a proxy the test can cut
def test_postgresql_connections_dropped_mean_503_then_the_pool_recovers(make_settings):
    settings = make_settings()
    url = urlsplit(settings.database.url.replace("postgresql+psycopg", "postgresql"))
    proxy = TcpProxy(url.hostname, url.port or 5432)
    proxied = settings.database.url.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")
    app = create_app(make_settings(database={"url": proxied}))
    app.config["TESTING"] = True
    try:
        with app.app_context():
            make_account(EO)
            rp = make_admin_client()
        signed_in = app.test_client()
        token = code_flow(signed_in, rp, scope=ADMIN_API_SCOPE, email=EO)["access_token"]
        assert signed_in.get("/account").status_code == 200

        proxy.cut()  # every pooled connection dies; new ones are refused
        _assert_unavailable_page(signed_in.get("/account"))
        browser = app.test_client()
        csrf = _sign_in_to_password_step(browser)  # the email step needs only the store
        _assert_unavailable_page(browser.post("/signin/password", data={"password": PASSWORD, "csrf_token": csrf}))
        api = app.test_client().post("/api/v1/accounts", json=NEW, headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and api.mimetype == "application/problem+json"
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "unreachable"

        proxy.restore()
        assert app.test_client().get("/readyz").status_code == 200
        assert signed_in.get("/account").status_code == 200  # the pool replaced its dead connections
        created = app.test_client().post("/api/v1/accounts", json=NEW, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.get_json()
        assert _accounts(app) == [EO, NEW["email"]]  # nothing from the outage, the later invite kept
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
        proxy.close()


@pytest.mark.shared_store  # the Redis is the test's own, behind a proxy that can cut it
def test_a_store_dropping_as_sign_out_everywhere_commits_fails_the_change_not_the_revocation(
        behind_a_proxy, monkeypatch):
    """The revocation markers are written as the change commits, before it does: a store that
    drops at that moment fails the change (503, still signed in, nothing ended: try again), never
    a change committed with its access tokens still working until they expire (found by an
    outside probe, when the markers were written after the commit and a failure only logged)."""
    from idp.oidc import tokens
    from tests.support import make_client

    app, proxy = behind_a_proxy()
    with app.app_context():
        make_account(EO)
        rp = make_client()
    http = app.test_client()
    bearer = {"Authorization": f"Bearer {code_flow(http, rp, email=EO, scope='openid email')['access_token']}"}
    assert http.get("/userinfo", headers=bearer).status_code == 200
    for record in (tokens.REVOKED_GRANTS, tokens.REVOKED_PEOPLE):
        def drops_first(*args, _put=record.put, **kwargs):
            proxy.cut()
            return _put(*args, **kwargs)
        monkeypatch.setattr(record, "put", drops_first)
    answer = _sign_out_everywhere(http)
    monkeypatch.undo()
    proxy.restore()
    _assert_unavailable_page(answer)
    assert http.get("/account").status_code == 200  # nothing was committed: still signed in

    done = _sign_out_everywhere(http)
    assert done.status_code == 200 and http.get("/account").status_code in (302, 303)
    assert http.get("/userinfo", headers=bearer).status_code == 401


@pytest.mark.shared_store  # the Redis is the test's own, behind a proxy that can cut it
def test_a_store_dropping_just_after_a_password_reset_commits_still_says_it_is_done(
        behind_a_proxy, monkeypatch):
    """A reset commits (new password, sessions ended), then refills the address's budget of tries
    in the store. A store dropping at that moment must not answer "try again" for a reset that
    happened, its code already spent, its "your password was changed" notice never sent (found by
    an outside probe)."""
    from idp import secrets
    from idp.accounts import passwords, services
    from idp.extensions import pepper

    app, proxy = behind_a_proxy()
    sent = []
    monkeypatch.setattr(services.background, "submit", lambda func, *a, **k: sent.append(func.__name__))
    with app.app_context():
        make_account(EO)
    http = app.test_client()
    page = http.get("/forgot").get_data(as_text=True)
    assert http.post("/forgot", data={"email": EO, "csrf_token": _csrf(page)}).status_code == 303
    with app.app_context():  # the code the email would carry
        services.RESET_CODES.put_json(services._reset_key(EO), {
            "hash": secrets.fast_hash("123456", pepper()), "expires_at": int(time.time()) + 600})
    sent.clear()
    store = app.extensions["idp.store"]
    real_delete = store.delete

    def drops_at_the_budget(*keys):
        if any("reset-attempts" in key for key in keys):
            proxy.cut()
        return real_delete(*keys)

    monkeypatch.setattr(store, "delete", drops_at_the_budget)
    new = "A brand new passphrase 42"
    answer = http.post("/forgot/code", data={"code": "123456", "password": new, "confirm": new,
                                             "password_confirm": new,
                                             "csrf_token": _csrf(http.get("/forgot/code").get_data(as_text=True))})
    monkeypatch.setattr(store, "delete", real_delete)
    proxy.restore()
    with app.app_context():
        assert passwords.verify(db.session.query(Account).one().password_hash, new)[0]
    assert answer.status_code == 303, answer.status_code
    assert sent == ["send_password_changed"]


@pytest.mark.shared_store  # the Redis is the test's own, behind a proxy that can cut it
def test_a_store_dropping_as_a_back_channel_logout_is_queued_fails_the_sign_out_not_the_logout(
        behind_a_proxy, monkeypatch):
    """A back-channel logout job is queued as the sign-out commits, before it does: a store that
    drops at that moment fails the sign-out (503, still signed in: try again), never a person
    signed out here whose service is never sent its logout token (found by an outside probe, when
    the job was queued after the commit and a failure only logged). The retry is delivered."""
    from idp.oidc import backchannel
    from tests.integration.logout.test_backchannel import Receiver, _wait
    from tests.support import make_client

    receiver = Receiver()
    app, proxy = behind_a_proxy(outbound={"allow_http_loopback": True, "failure_cache_seconds": 0})
    try:
        with app.app_context():
            make_account(EO)
            rp = make_client(backchannel_logout_uri=receiver.uri)
        http = app.test_client()
        code_flow(http, rp, email=EO)
        store = app.extensions["idp.store"]

        def drops_first(*args, _enqueue=store.enqueue, **kwargs):
            proxy.cut()
            return _enqueue(*args, **kwargs)
        monkeypatch.setattr(store, "enqueue", drops_first)
        answer = _sign_out_everywhere(http)
        monkeypatch.undo()
        proxy.restore()
        _assert_unavailable_page(answer)
        assert http.get("/account").status_code == 200  # nothing was committed: still signed in
        assert not receiver.tokens

        done = _sign_out_everywhere(http)
        assert done.status_code == 200 and http.get("/account").status_code in (302, 303)
        with app.app_context():
            backchannel.deliver_due()
        assert _wait(lambda: receiver.tokens), "signed out, but the service was never sent its logout token"
    finally:
        receiver.close()


@pytest.mark.shared_store  # two processes' apps on one PostgreSQL and the test's own Redis
def test_a_store_dropping_as_a_client_is_disabled_fails_the_change_not_the_other_processes_caches(
        make_settings, redis_server, monkeypatch):
    """Process A's link to Redis drops as it publishes that a client was disabled; process B's link
    is fine, so B's watch is live and it trusts its cached copy. The notice is published as the
    change commits, before it does: the change fails (nothing disabled; a 503 to whoever asked)
    and B, rightly, still serves the client; the retry stops it in B at once (found by an outside
    probe, when the notice went after the commit, a failure was only logged on the view that every
    process's watch was down, and B issued the disabled client tokens until its copy expired)."""
    from idp.oidc import clients
    from idp.store import StoreUnavailable
    from tests.support import make_client, token_request

    proxy = TcpProxy("127.0.0.1", redis_server.port)
    a = create_app(make_settings(store={"redis_url": f"redis://127.0.0.1:{proxy.port}/0", "prefix": "ab:"}))
    b = create_app(make_settings(store={"redis_url": f"redis://127.0.0.1:{redis_server.port}/0", "prefix": "ab:"}))
    try:
        with a.app_context():
            rp = make_client(grant_types=["client_credentials"], scope="openid")
        cache_b = b.extensions["idp.clients"]

        def b_answers():
            return token_request(b.test_client(), rp, {"grant_type": "client_credentials"}).status_code

        deadline = time.time() + 10
        while time.time() < deadline:  # B's watch goes live, then B caches the client
            assert b_answers() == 200
            with b.app_context():
                if cache_b.cached(rp.client_id) is not None:
                    break
            time.sleep(0.1)
        with b.app_context():
            assert cache_b.cached(rp.client_id) is not None

        store_a = a.extensions["idp.store"]

        def drops_first(*args, _publish=store_a.publish, **kwargs):
            proxy.cut()
            return _publish(*args, **kwargs)
        monkeypatch.setattr(store_a, "publish", drops_first)
        with a.app_context(), pytest.raises(StoreUnavailable):
            clients.set_disabled(rp.client_id, True, actor="test")
        monkeypatch.undo()
        proxy.restore()
        with a.app_context():
            assert not clients.get(rp.client_id).disabled  # nothing was committed
        assert b_answers() == 200

        with a.app_context():
            clients.set_disabled(rp.client_id, True, actor="test")
        deadline = time.time() + 2  # the notice crosses Redis to B's watch
        while b_answers() != 401 and time.time() < deadline:
            time.sleep(0.05)
        assert b_answers() == 401, "the client was disabled, but process B still issues it tokens"
    finally:
        for app in (a, b):
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()
        proxy.close()
