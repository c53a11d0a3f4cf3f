"""The database pool tests a connection before handing it out only when it has sat idle (a round
trip saved on every busy request): one that died while idle is replaced before anyone uses it; one
that dies between two busy requests fails one request with a 503, never a 500, and is replaced.
The same for the pool of autocommit connections that UserInfo and a refresh use."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from idp import create_app
from idp.accounts import claims_copies
from idp.extensions import db
from tests.support import code_flow, make_account, make_client, token_request

pytestmark = pytest.mark.shared_store  # PostgreSQL: connections that can be killed from outside


def _kill_pooled_connections(app) -> None:
    """Terminate, from a connection of its own (outside the pool), every pooled one."""
    outside = create_engine(app.extensions["idp.db"].engine.url, poolclass=NullPool)
    try:
        with outside.connect() as conn:
            killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    finally:
        outside.dispose()
    assert killed >= 1


@pytest.fixture
def pg_app(make_settings):
    app = create_app(make_settings())
    app.config["TESTING"] = True
    yield app
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def _pool_one_connection(app) -> None:
    with app.app_context():
        db.session.execute(text("SELECT 1"))
    db_engine = app.extensions["idp.db"].engine
    assert db_engine.pool.checkedin() >= 1


def _forget_claims_copies(app) -> None:
    """UserInfo answers from the store's copy of the person while it is current: make it read."""
    with app.app_context():
        claims_copies.VERSIONS.put(claims_copies.EVERYONE, "a version no copy was made under")


def test_a_connection_that_died_while_idle_is_replaced_unseen(pg_app, monkeypatch):
    from idp import extensions

    _pool_one_connection(pg_app)
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.0)  # (every pooled one counts as idle)
    _kill_pooled_connections(pg_app)
    assert pg_app.test_client().get("/readyz").status_code == 200


def test_a_connection_that_died_while_busy_costs_one_503_then_recovers(pg_app, monkeypatch):
    from idp import extensions

    _pool_one_connection(pg_app)
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 3600.0)  # (none counts as idle: no ping)
    _kill_pooled_connections(pg_app)
    http = pg_app.test_client()
    first = http.get("/readyz")
    assert first.status_code == 503 and "Traceback" not in first.get_data(as_text=True)
    assert http.get("/readyz").status_code == 200


def _userinfo(http, access_token: str):
    """UserInfo by its endpoint: a bearer token in a form (the short way ahead of Flask, which
    takes GETs, has an answer of its own to a dead connection: below)."""
    return http.post("/userinfo", data={"access_token": access_token})


def test_the_autocommit_pool_recovers_the_same_way(pg_app, monkeypatch):
    """UserInfo and a refresh run on the autocommit pool: its connections killed between two busy
    requests cost each one 503 (never a 500, nothing half-written), then they work again."""
    from idp import extensions

    with pg_app.app_context():
        make_account("eo@centre.example")
        rp = make_client(grant_types=["authorization_code", "refresh_token"], scope="openid profile offline_access")
    http = pg_app.test_client()
    issued = code_flow(http, rp, scope="openid profile offline_access")
    assert _userinfo(http, issued["access_token"]).status_code == 200  # the autocommit pool has a connection
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 3600.0)
    _kill_pooled_connections(pg_app)
    _forget_claims_copies(pg_app)
    first = _userinfo(http, issued["access_token"])
    assert first.status_code == 503 and "Traceback" not in first.get_data(as_text=True)
    assert _userinfo(http, issued["access_token"]).status_code == 200
    _kill_pooled_connections(pg_app)
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    failed = token_request(http, rp, refresh)
    assert failed.status_code == 503 and failed.get_json()["error"] == "temporarily_unavailable"
    again = token_request(http, rp, refresh)  # the failed attempt used nothing up
    assert again.status_code == 200, again.get_data(as_text=True)


def test_the_short_way_finding_its_connection_dead_leaves_the_answer_to_the_endpoint(pg_app, monkeypatch, caplog):
    """A plain GET /userinfo is answered ahead of Flask; when the connection it read on has died,
    the endpoint answers instead, on a new one (the dead one's pool discarded): no 503, no 500,
    nothing logged as a failure of the short way."""
    from idp import extensions

    with pg_app.app_context():
        make_account("eo@centre.example")
        rp = make_client(grant_types=["authorization_code"], scope="openid profile")
    http = pg_app.test_client()
    bearer = {"Authorization": f"Bearer {code_flow(http, rp, scope='openid profile')['access_token']}"}
    assert http.get("/userinfo", headers=bearer).status_code == 200
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 3600.0)
    _kill_pooled_connections(pg_app)
    _forget_claims_copies(pg_app)
    answer = http.get("/userinfo", headers=bearer)
    assert answer.status_code == 200 and answer.get_json()["given_name"] == "Ada"
    assert "not answered ahead of the endpoint" not in caplog.text


def test_one_pool_finding_the_server_gone_renews_the_other(pg_app, monkeypatch):
    """Both pools go to the same server: when one finds its connection dead, the other's are
    discarded too, rather than each costing one more request a 503 once the server is back."""
    from idp import extensions

    with pg_app.app_context():
        make_account("eo@centre.example")
        rp = make_client(grant_types=["authorization_code"], scope="openid profile")
    http = pg_app.test_client()
    issued = code_flow(http, rp, scope="openid profile")
    assert _userinfo(http, issued["access_token"]).status_code == 200  # the autocommit pool has a connection
    _pool_one_connection(pg_app)
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 3600.0)
    _kill_pooled_connections(pg_app)
    _forget_claims_copies(pg_app)
    assert _userinfo(http, issued["access_token"]).status_code == 503  # the autocommit pool finds out
    assert http.get("/readyz").status_code == 200  # the session's pool was renewed with it


def test_a_connection_cut_after_the_work_leaves_the_answer_as_it_was(pg_app):
    """The server goes away after the request has done its work, with a transaction still open
    (a read after the commit): ending the request cannot roll it back, and must not turn the
    answer into a 500; the server has ended the transaction itself."""
    def work_then_cut():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()  # a transaction now open
        _kill_pooled_connections(pg_app)
        assert pid
        return "done"

    pg_app.add_url_rule("/test-work-then-cut", view_func=work_then_cut)
    http = pg_app.test_client()
    answer = http.get("/test-work-then-cut")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "done"
    assert http.get("/readyz").status_code == 200
