"""A primary the Sentinels have replaced while it went on running (cut off from them: it never
hears it was demoted, never closes its clients) is left within seconds: reads, writes and change
notices go to the new primary, and a token revoked there is refused here (idp/store.py,
``_PrimaryCheck``). redis-py asks the Sentinels only when it makes a connection, so without the
check a process kept reading the old primary for as long as its connections stayed up."""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp import create_app, protocol
from idp.store import RedisStore
from tests.redis_servers import UNDEMOTABLE, SentinelSetup, wait_until
from tests.support import _csrf

pytestmark = pytest.mark.shared_store


@pytest.fixture
def split(tmp_path):
    with SentinelSetup(tmp_path / "sentinel", primary_lines=UNDEMOTABLE) as setup:
        yield setup


def _still_a_primary(setup: SentinelSetup) -> None:
    """The old primary, after the Sentinels have tried to demote it, is still one (the set-up is
    what the test says it is)."""
    time.sleep(2)
    assert setup.primary.client().info("replication")["role"] == "master"


def test_reads_writes_and_notices_leave_a_replaced_primary(split):
    store = RedisStore(split.url, prefix="t:")
    heard: queue.Queue[str] = queue.Queue()
    watch = store.watch("news", heard.put, lambda: None)
    wait_until(lambda: getattr(watch, "live", False), 10, "the watch subscribed")
    # a serving thread that lives on, keeping its read connection, as a server's threads do
    serving = ThreadPoolExecutor(max_workers=1)
    store.put("marker", "before", 60)
    assert serving.submit(store.get_many, "marker").result() == ["before"]
    assert store.get_many("marker") == ["before"]
    store.put("warm", "1", 60)
    pool = store.client.connection_pool
    assert pool._available_connections  # an idle connection to the old primary, for writes
    try:
        new_port = split.fail_over()
        _still_a_primary(split)
        new_primary = split.node(new_port).client()
        new_primary.set("t:marker", "after")
        wait_until(lambda: serving.submit(store.get_many, "marker").result() == ["after"], 10,
                   "the serving thread's reads from the new primary", interval=0.2)
        assert store.get_many("marker") == ["after"]
        store.put("written", "here", 60)
        assert new_primary.get("t:written") == "here" and split.primary.client().get("t:written") is None

        def notice_heard():
            new_primary.publish("t:news", "hello")
            try:
                return heard.get(timeout=0.3) == "hello"
            except queue.Empty:
                return False

        wait_until(notice_heard, 20, "a notice published on the new primary")
    finally:
        serving.shutdown()
        store.close()


def test_a_token_revoked_on_the_new_primary_is_refused(split, make_settings):
    from idp.oidc import clients, tokens

    app = create_app(make_settings(store={"redis_url": split.url}))
    app.config["TESTING"] = True
    http = app.test_client()
    try:
        with app.app_context():
            service = clients.create({"client_name": "Batch results", "grant_types": ["client_credentials"],
                                      "scope": "access"}, actor="test", pepper=app.extensions["idp.pepper"])
        auth = (service.client.client_id, service.client_secret)
        token = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth).get_json()["access_token"]

        def active() -> bool:
            return http.post("/introspect", data={"token": token}, auth=auth).get_json()["active"]

        assert active() and active()
        new_port = split.fail_over()
        _still_a_primary(split)
        # another process, on the Sentinels' side, revokes the token: its marker is on the new primary
        with app.app_context():
            jti = tokens.decode_own(token, typ=protocol.ACCESS_TOKEN_TYP)["jti"]
        other = RedisStore(f"redis://127.0.0.1:{new_port}/0", prefix=app.config["IDP_SETTINGS"].store.prefix)
        other.put(tokens.REVOKED_TOKENS.key(jti), "1", 300)
        other.close()
        wait_until(lambda: not active(), 10, "the revocation seen", interval=0.2)
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


def test_rate_limits_count_on_the_new_primary(split, make_settings):
    """The rate limiter keeps connections of its own (the ``limits`` library's client): they leave
    the replaced primary with the store's, so its counters are not kept on a primary the Sentinels
    have given up (and lost when it rejoins as a replica)."""
    app = create_app(make_settings(store={"redis_url": split.url}))
    app.config["TESTING"] = True
    prefix = app.config["IDP_SETTINGS"].store.prefix

    def ask_for_a_password_step():
        browser = app.test_client()
        page = browser.get("/signin")
        step = browser.post("/signin", data={"email": "someone@centre.example",
                                             "csrf_token": _csrf(page.get_data(as_text=True))})
        assert step.status_code == 303, step.status_code

    def counted(node) -> int:
        """The sign-in attempts from this address the node has counted (its replica copies it)."""
        client = node.client()
        return sum(int(client.get(key) or 0) for key in client.keys(f"LIMITS:LIMITER/{prefix}*"))

    try:
        ask_for_a_password_step()
        assert counted(split.primary) > 0
        app.extensions["idp.store"].get_many("warm")  # a serving process reads: the check starts
        new_port = split.fail_over()
        _still_a_primary(split)
        new_primary = split.node(new_port)
        copied = counted(new_primary)  # what it had as the replica

        def counted_there() -> bool:
            ask_for_a_password_step()
            return counted(new_primary) > copied

        wait_until(counted_there, 10, "a rate limit counted on the new primary", interval=0.2)
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
