"""Back-channel logout: a signed logout token reaches every client of an ending session; a client
that is down is retried and never delays the person signing out."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc import backchannel
from tests.background import Served
from tests.support import _csrf, code_flow, make_account, make_client


class Receiver:
    """A relying party's logout endpoint: records tokens; can be made slow or failing."""

    def __init__(self, status=200, delay=0.0):
        self.tokens, self.status, self.delay = [], status, delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                time.sleep(receiver.delay)
                receiver.tokens.append(parse_qs(body)["logout_token"][0])
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/logout"
        self._served = Served(self.server)

    def close(self):
        self._served.stop()


@pytest.fixture
def settings(make_settings):
    # The receivers listen on plain-http loopback: the development setting lets the provider reach
    # them. No failure memory: a test runs a retry at once "as if its time had come".
    return make_settings(outbound={"allow_http_loopback": True, "failure_cache_seconds": 0})


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _wait(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _sign_out(client):
    page = client.get("/account").get_data(as_text=True)
    return client.post("/signout", data={"csrf_token": _csrf(page)})


def test_sign_out_sends_a_valid_logout_token(app, client, receiver):
    with app.app_context():
        make_account()
        rp = make_client(backchannel_logout_uri=receiver.uri, backchannel_logout_session_required=True)
        quiet = make_client(name="No logout URI")
    id_token = jwt.decode(code_flow(client, rp)["id_token"],
                          KeySet.import_key_set(client.get("/jwks.json").get_json())).claims
    code_flow(client, quiet)
    # the service takes 3 s to answer: a sign-out that waited for it would return with the token
    # already recorded (the receiver records it before it answers)
    receiver.delay = 3.0
    assert _sign_out(client).status_code == 200
    assert receiver.tokens == []
    assert _wait(lambda: receiver.tokens)
    token = jwt.decode(receiver.tokens[0], KeySet.import_key_set(client.get("/jwks.json").get_json()))
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == "http://localhost" and claims["aud"] == rp.client_id
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"]
    assert "nonce" not in claims and claims["jti"] and claims["iat"] <= time.time()
    assert len(receiver.tokens) == 1  # only the client that registered a URI


def test_a_client_that_is_down_is_retried_without_delaying_sign_out(app, client):
    slow = Receiver(status=503)
    try:
        with app.app_context():
            make_account()
            rp = make_client(backchannel_logout_uri=slow.uri)
        code_flow(client, rp)
        slow.delay = 3.0  # (as above: a sign-out that waited would find the token recorded)
        _sign_out(client)
        assert slow.tokens == []
        assert _wait(lambda: len(slow.tokens) >= 1)
        slow.delay = 0.0
        slow.status = 200
        with app.app_context():
            # The retry is due after the first backoff step: run the due jobs as if that time had come.
            # (On a slow run the process's poller may get there first; either way it is delivered once.)
            backchannel.deliver_due(now=time.time() + backchannel.BACKOFF[0] + 1)
        assert _wait(lambda: len(slow.tokens) == 2)
        time.sleep(0.3)
        assert len(slow.tokens) == 2 and slow.tokens[0] == slow.tokens[1]
    finally:
        slow.close()


def test_password_reset_and_rollback(app, client, receiver):
    """Ending sessions inside a transaction that rolls back tells nobody."""
    from idp.accounts import sessions
    from idp.accounts.models import Account
    from idp.extensions import db

    with app.app_context():
        make_account()
        rp = make_client(backchannel_logout_uri=receiver.uri)
    code_flow(client, rp)
    with app.app_context():
        account = db.session.query(Account).one()
        sessions.end_all(account.id)
        db.session.rollback()
        time.sleep(0.3)
        assert receiver.tokens == []
        sessions.end_all(account.id)
        db.session.commit()
    assert _wait(lambda: len(receiver.tokens) == 1)


def _services_told_of_logouts(app, receivers) -> list:
    """A person, and a service per receiver registered for back-channel logout. No refresh tokens:
    on SQLite, writing one first would make two code exchanges take turns for the whole exchange."""
    with app.app_context():
        make_account()
        return [make_client(name=f"Service {i}", redirect_uri=f"https://rp{i}.example/cb",
                            grant_types=["authorization_code"], backchannel_logout_uri=r.uri)
                for i, r in enumerate(receivers)]


def test_two_services_joining_one_session_at_once_are_both_sent_a_logout(app, client, monkeypatch):
    """A portal opens two services at the same moment: both codes are redeemed at once, each
    noting its service on the SSO session's row. Each exchange holds the row from reading the list
    to its commit, so the second waits and adds to what the first wrote: signing out tells both
    (found by an outside probe, when the second wrote back the list it read before the first's
    commit and one service was never told)."""
    from idp.accounts import sessions
    from tests.support import authorize, exchange, query

    receivers = [Receiver(), Receiver()]
    try:
        rps = _services_told_of_logouts(app, receivers)
        codes = []
        for rp in rps:
            response, verifier = authorize(client, rp)
            codes.append((rp, query(response.location)["code"], verifier))

        arrived, noted, second_reading = [], [], threading.Event()
        real_by_sid, real_note = sessions.by_sid, sessions.note_client

        def by_sid(sid, **kwargs):
            arrived.append(sid)
            if len(arrived) == 2:
                second_reading.set()
            return real_by_sid(sid, **kwargs)

        def note_client(entry, client_id):
            real_note(entry, client_id)
            noted.append(client_id)
            if len(noted) == 1:  # the first to note commits only once the second is reading the row
                second_reading.wait(timeout=5)
                time.sleep(0.3)
        monkeypatch.setattr(sessions, "by_sid", by_sid)
        monkeypatch.setattr(sessions, "note_client", note_client)
        answers = [None, None]

        def redeem(i):
            rp, code, verifier = codes[i]
            answers[i] = exchange(app.test_client(), rp, code, verifier)
        threads = [threading.Thread(target=redeem, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        monkeypatch.undo()
        assert [a.status_code for a in answers] == [200, 200]

        _sign_out(client)
        assert _wait(lambda: receivers[0].tokens and receivers[1].tokens), (
            f"signed out, but a service that joined at the same moment was sent no logout token: "
            f"{[len(r.tokens) for r in receivers]}")
    finally:
        for r in receivers:
            r.close()


def test_discovery_advertises_backchannel_logout(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True


def test_a_resting_endpoint_does_not_use_up_other_jobs_attempts(make_settings):
    """After a failed delivery the fetcher rests the endpoint for a while ([outbound]
    failure_cache_seconds); another job for it meanwhile waits that out instead of counting a
    failed attempt, so every job keeps its whole retry schedule."""
    import json

    from idp import create_app
    from idp.extensions import store

    app = create_app(make_settings(outbound={"allow_http_loopback": True, "failure_cache_seconds": 30}))
    down = Receiver(status=503)
    try:
        with app.app_context():
            now = time.time()
            store.enqueue(backchannel.QUEUE, json.dumps({"client_id": "a", "uri": down.uri, "attempt": 0,
                                                         "token": "t1"}), now)
            assert backchannel.deliver_due(now=now) == 0 and len(down.tokens) == 1
            store.enqueue(backchannel.QUEUE, json.dumps({"client_id": "b", "uri": down.uri, "attempt": 0,
                                                         "token": "t2"}), now)
            assert backchannel.deliver_due(now=now) == 0 and len(down.tokens) == 1  # not contacted
            queued = {json.loads(j)["token"]: json.loads(j) for j in store.claim_due(backchannel.QUEUE, now + 3600)}
            assert queued["t1"]["attempt"] == 1 and queued["t2"]["attempt"] == 0
    finally:
        down.close()
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


def test_a_service_joining_as_the_person_signs_out_is_sent_a_logout(app, client, monkeypatch):
    """A code is being redeemed (its exchange holds the session's row, noting its service) as the
    person signs out: the sign-out waits for the row, then reads the list again, so the service that
    just joined is told too (noticed after the probe above: the sign-out used the list it had read
    before the exchange committed)."""
    from idp.accounts import sessions
    from tests.support import authorize, exchange, query

    receivers = [Receiver(), Receiver()]
    try:
        rps = _services_told_of_logouts(app, receivers)
        code_flow(client, rps[0])  # the first service has joined
        response, verifier = authorize(client, rps[1])
        code = query(response.location)["code"]

        noted, signing_out = threading.Event(), threading.Event()
        real_note = sessions.note_client

        def note_client(entry, client_id):
            real_note(entry, client_id)
            noted.set()
            signing_out.wait(timeout=5)
            time.sleep(0.3)  # the sign-out is at the row by now, and must wait for this commit
        monkeypatch.setattr(sessions, "note_client", note_client)
        page = client.get("/account").get_data(as_text=True)
        answers = {}
        redeem = threading.Thread(target=lambda: answers.setdefault(
            "exchange", exchange(app.test_client(), rps[1], code, verifier)))
        redeem.start()
        assert noted.wait(timeout=10)
        signing_out.set()
        answers["signout"] = client.post("/signout", data={"csrf_token": _csrf(page)})
        redeem.join(timeout=30)
        monkeypatch.undo()
        assert answers["exchange"].status_code == 200 and answers["signout"].status_code == 200
        assert _wait(lambda: receivers[0].tokens and receivers[1].tokens), (
            f"a service that joined as the person signed out was sent no logout token: "
            f"{[len(r.tokens) for r in receivers]}")
    finally:
        for r in receivers:
            r.close()
