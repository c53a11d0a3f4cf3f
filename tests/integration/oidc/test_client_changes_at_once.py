"""Changes to one client that overlap, on both backends: each holds the client's row from before
what it checks until it commits (idp.oidc.clients._held), so the second counts what the first
left. An RFC 7592 PUT in flight cannot undo what board staff narrowed meanwhile, and a rotation in
flight cannot bring back a secret another rotation stopped at once.

The first change is stopped after its check (a hook), the second is started and let run until it
commits or waits for the row, then the first goes on: without the hold the second has committed
by then, and the first writes back what it read before."""

from __future__ import annotations

import base64
import threading

from idp.extensions import db
from idp.oidc import clients, registration

GOOD = {"client_name": "Results", "redirect_uris": ["https://results.example/cb"]}


def _self_registered(app, http, scope: str):
    """A client registered through /register: (client_id, its RFC 7592 URI, the registration
    token's header, its registration as read back)."""
    with app.app_context():
        token = registration.issue_initial_token(actor="test", uses=1)
    created = http.post("/register", json={**GOOD, "scope": scope},
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    uri = "/register/" + created["client_id"]
    auth = {"Authorization": f"Bearer {created['registration_access_token']}"}
    return created["client_id"], uri, auth, http.get(uri, headers=auth).get_json()


def _first_then_second(monkeypatch, name: str, first, second) -> None:
    """Run ``first`` in a thread until it returns from ``clients.<name>``, then ``second`` in
    another until it has committed or is waiting for the client's row, then let ``first`` go on."""
    checked, second_at_row, go_on = threading.Event(), threading.Event(), threading.Event()
    original, original_hold = getattr(clients, name), getattr(clients, "hold_row", None)

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if threading.current_thread().name == "first":
            checked.set()
            go_on.wait(10)
        return result

    def noticed_hold(*args, **kwargs):
        if threading.current_thread().name == "second":
            second_at_row.set()
        return original_hold(*args, **kwargs)

    monkeypatch.setattr(clients, name, paused)
    if original_hold is not None:
        monkeypatch.setattr(clients, "hold_row", noticed_hold)

    def run(work):
        try:
            work()
        finally:
            second_at_row.set()

    threads = {role: threading.Thread(target=run, args=(work,), name=role)
               for role, work in (("first", first), ("second", second))}
    threads["first"].start()
    assert checked.wait(10)
    threads["second"].start()
    assert second_at_row.wait(10)
    go_on.set()
    for thread in threads.values():
        thread.join(20)
        assert not thread.is_alive()


def test_an_rfc7592_put_in_flight_does_not_undo_what_board_staff_narrow_meanwhile(app, monkeypatch):
    """The client sends its registration again (the same scopes in another order: nothing loosened);
    board staff take offline_access from it while the PUT is between its check and its write. The
    PUT waits for nothing it read: board staff's change is what stays."""
    http = app.test_client()
    client_id, uri, auth, held = _self_registered(app, http, "openid profile offline_access")
    answers = []

    def put():
        body = {**{k: v for k, v in held.items() if v is not None}, "scope": "offline_access profile openid"}
        answers.append(app.test_client().put(uri, json=body, headers=auth).status_code)

    def narrow():
        with app.app_context():  # as the board's form, the API and the CLI do
            meta = {**clients.metadata_of(clients.get(client_id)), "scope": "openid profile"}
            clients.update(client_id, meta, actor="board", pepper=app.extensions["idp.pepper"])
            db.session.remove()

    _first_then_second(monkeypatch, "_refuse_loosening", put, narrow)
    assert answers == [200]
    with app.app_context():
        assert clients.get(client_id).scope == "openid profile"
        db.session.remove()
    assert http.get(uri, headers=auth).get_json()["scope"] == "openid profile"


def _token_status(http, client_id: str, secret: str) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return http.post("/token", data={"grant_type": "client_credentials"},
                     headers={"Authorization": f"Basic {basic}"}).status_code


def test_a_secret_stopped_at_once_is_not_brought_back_by_a_rotation_in_flight(app, client, monkeypatch):
    """A colleague rotates the secret with a 30-day grace; board staff, told it leaked, rotate it
    with none while the first is between reading the old secret and writing. The second waits for
    the first and stops everything before its own secret: the leaked secret never works again, and
    the secret the last rotation showed is the one that works."""
    pepper = app.extensions["idp.pepper"]
    with app.app_context():
        created = clients.create({**GOOD, "grant_types": ["client_credentials"], "scope": "results.read"},
                                 actor="test", pepper=pepper)
        client_id, leaked = created.client.client_id, created.client_secret
        db.session.remove()
    shown = {}

    def rotate(who: str, grace: int):
        def work():
            with app.app_context():
                shown[who] = clients.rotate_secret(client_id, actor=who, pepper=pepper, grace_seconds=grace)
                db.session.remove()
        return work

    _first_then_second(monkeypatch, "_new_secret", rotate("colleague", 30 * 86400), rotate("board", 0))
    assert _token_status(client, client_id, leaked) == 401
    assert _token_status(client, client_id, shown["colleague"]) == 401  # replaced by the rotation after it
    assert _token_status(client, client_id, shown["board"]) == 200


def test_an_rfc7592_put_in_flight_changes_nothing_once_board_staff_have_disabled_the_client(app, monkeypatch):
    """Board staff disable a self-registered client (it misbehaves) while its PUT is between the
    endpoint's check of its registration token and its write: the PUT changes nothing, and is
    answered as a disabled client's token is."""
    http = app.test_client()
    client_id, uri, auth, held = _self_registered(app, http, "openid profile")
    answers = []

    def put():
        body = {**{k: v for k, v in held.items() if v is not None},
                "redirect_uris": ["https://elsewhere.example/cb"]}
        answers.append(app.test_client().put(uri, json=body, headers=auth))

    def disable():
        with app.app_context():
            clients.set_disabled(client_id, True, actor="board")
            db.session.remove()

    _first_then_second(monkeypatch, "validate_metadata", put, disable)
    assert answers[0].status_code == 401 and answers[0].get_json()["error"] == "invalid_token"
    with app.app_context():
        row = clients.get(client_id)
        assert row.disabled and row.redirect_uris == ["https://results.example/cb"]
        db.session.remove()
