"""The per-process client cache the token endpoint reads (idp/oidc/clients.py).

It saves the token endpoint its database query, and every change made through the provider
(secret rotated, client disabled, deleted or updated) takes effect at once. Across processes
(gunicorn workers, the CLI) see test_client_changes_across_processes.py.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time

import pytest
from sqlalchemy import event

from idp import create_app
from idp.extensions import db, store
from idp.oidc import clients

SERVICE = {"client_name": "Batch results", "grant_types": ["client_credentials"], "scope": "access"}


@pytest.fixture
def service(app):
    with app.app_context():
        created = clients.create(dict(SERVICE), actor="test", pepper=app.extensions["idp.pepper"])
        return {"client_id": created.client.client_id, "client_secret": created.client_secret}


def token(http, client_id, client_secret, **form):
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return http.post("/token", data={"grant_type": "client_credentials", **form},
                     headers={"Authorization": f"Basic {basic}"})


@contextlib.contextmanager
def statements(app):
    """The SQL statements the app runs inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    engines = app.extensions["idp.db"].engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def wait_live(app):
    cache = app.extensions["idp.clients"]
    wait_until(lambda: cache._watch is not None and cache._watch.live, timeout=10)


def test_a_cached_client_costs_the_token_endpoint_no_query(app, client, service):
    assert token(client, **service).status_code == 200  # first use reads the client
    wait_live(app)
    assert token(client, **service).status_code == 200
    with statements(app) as seen:
        for _ in range(3):
            assert token(client, **service).status_code == 200
    assert seen == []


def test_a_rotated_secret_takes_effect_at_once(app, client, service):
    wait_live_after_first_use(app, client, service)
    with app.app_context():
        new_secret = clients.rotate_secret(service["client_id"], actor="test", pepper=app.extensions["idp.pepper"])
    refused = token(client, **service)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    assert token(client, service["client_id"], new_secret).status_code == 200


def test_a_disabled_client_is_refused_at_once_and_works_again_when_enabled(app, client, service):
    wait_live_after_first_use(app, client, service)
    with app.app_context():
        clients.set_disabled(service["client_id"], True, actor="test")
    assert token(client, **service).get_json()["error"] == "invalid_client"
    with app.app_context():
        clients.set_disabled(service["client_id"], False, actor="test")
    assert token(client, **service).status_code == 200


def test_a_deleted_client_is_refused_at_once(app, client, service):
    wait_live_after_first_use(app, client, service)
    with app.app_context():
        assert clients.delete(service["client_id"], actor="test") is True
    assert token(client, **service).get_json()["error"] == "invalid_client"


def test_an_updated_client_is_used_as_updated_at_once(app, client, service):
    wait_live_after_first_use(app, client, service)
    assert token(client, **service, scope="results.read").get_json()["error"] == "invalid_scope"
    with app.app_context():
        clients.update(service["client_id"], {**SERVICE, "scope": "access results.read"}, actor="test",
                       pepper=app.extensions["idp.pepper"])
    answer = token(client, **service, scope="results.read")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["scope"] == "results.read"


def test_a_change_announced_by_another_process_is_heard(app, client, service):
    """What another process's change looks like here: only the notice on the store arrives."""
    wait_live_after_first_use(app, client, service)
    with app.app_context():
        # the row changes behind this process's back, then the notice comes through the store
        row = clients.get(service["client_id"])
        row.disabled = True
        db.session.commit()
        assert token(client, **service).status_code == 200  # no notice yet: still cached
        store.publish(clients.CHANGES, service["client_id"])
    wait_until(lambda: token(client, **service).status_code == 401)


def test_while_the_watch_is_not_live_every_lookup_reads_the_database(app, client, service, monkeypatch):
    wait_live_after_first_use(app, client, service)
    monkeypatch.setattr(app.extensions["idp.clients"]._watch, "live", False)
    with statements(app) as seen:
        for _ in range(3):
            assert token(client, **service).status_code == 200
    assert sum("clients" in s for s in seen) == 3
    # and a change nobody announced is seen at once
    with app.app_context():
        clients.get(service["client_id"]).disabled = True
        db.session.commit()
    assert token(client, **service).status_code == 401


def test_a_notice_during_a_lookup_keeps_what_it_read_out_of_the_cache(app, service, monkeypatch):
    cache = app.extensions["idp.clients"]
    real_from_row = clients.RegisteredClient.from_row

    def read_then_hear_a_notice(row, pepper):
        cache.forget(row.client_id)  # the notice arrives while this lookup holds the old row
        return real_from_row(row, pepper)

    with app.test_request_context():
        cache.get(service["client_id"])
        wait_live(app)
        cache.forget(clients.EVERY_CLIENT)
        monkeypatch.setattr(clients.RegisteredClient, "from_row", staticmethod(read_then_hear_a_notice))
        assert cache.get(service["client_id"]) is not None
        monkeypatch.setattr(clients.RegisteredClient, "from_row", staticmethod(real_from_row))
        with statements(app) as seen:
            cache.get(service["client_id"])
        assert len(seen) == 1, "the lookup that overlapped a notice must not have been cached"
        with statements(app) as seen:
            cache.get(service["client_id"])
        assert seen == []


@pytest.mark.shared_store  # two processes' apps on one PostgreSQL and Redis
def test_a_copy_another_process_reads_as_a_change_commits_is_dropped_once_it_has_committed(make_settings):
    """A change's notice goes out as it commits, before it does (a store that cannot take it fails
    the change): another process hearing it may read the client again before the commit lands and
    cache the old row. The notice goes out again once the change has committed, and that copy is
    dropped: a client disabled then is refused there at once, not once its copy expires."""
    prefix = f"t:{time.time_ns()}:"
    a, b = (create_app(make_settings(store={"prefix": prefix})) for _ in range(2))
    try:
        with a.app_context():
            rp = clients.create(dict(SERVICE), actor="test", pepper=a.extensions["idp.pepper"])
            service = {"client_id": rp.client.client_id, "client_secret": rp.client_secret}
        cache_b, http_b = b.extensions["idp.clients"], b.test_client()
        wait_live_after_first_use(b, http_b, service)
        store_a = a.extensions["idp.store"]
        real_publish, published = store_a.publish, []

        def publish(channel, message):
            real_publish(channel, message)
            published.append(message)
            if len(published) == 1:  # as the change commits: B hears it, then reads the old row again
                wait_until(lambda: cache_b.cached(service["client_id"]) is None)
                lookup = threading.Thread(target=lambda: token(b.test_client(), **service))
                lookup.start()
                lookup.join(timeout=10)
                assert cache_b.cached(service["client_id"]) is not None  # the old row, cached again

        store_a.publish = publish
        with a.app_context():
            clients.set_disabled(service["client_id"], True, actor="test")
        store_a.publish = real_publish
        wait_until(lambda: token(http_b, **service).status_code == 401, timeout=2)
        assert published == [service["client_id"]] * 2
    finally:
        for app in (a, b):
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()


def test_unknown_and_malformed_client_ids_are_not_cached(app, service):
    cache = app.extensions["idp.clients"]
    with app.test_request_context():
        for bad in ("", "x" * 65, None, 7, "no-such-client"):
            assert cache.get(bad) is None
        with statements(app) as seen:
            assert cache.get("no-such-client") is None
        assert len(seen) == 1  # a miss is asked again: a client created elsewhere works at once


def test_the_cache_is_bounded(app):
    cache = clients.ClientCache(app.extensions["idp.store"], 30, app.extensions["idp.pepper"], max_entries=3)
    with app.test_request_context():
        pepper = app.extensions["idp.pepper"]
        ids = [clients.create(dict(SERVICE), actor="test", pepper=pepper).client.client_id for _ in range(5)]
        cache.get(ids[0])
        wait_until(lambda: cache._watch.live)
        for cid in ids:
            assert cache.get(cid).client_id == cid
        assert 1 <= len(cache._entries) <= 3  # the newest is kept; the oldest went


# ------------------------------------------------------------------ helpers
def wait_live_after_first_use(app, client, service):
    assert token(client, **service).status_code == 200
    wait_live(app)
    assert token(client, **service).status_code == 200  # now served from the cache


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
