"""Client services in the board console: register with the form (every field `idp client create`
covers, and a logo), the secret shown once and working at the token endpoint at once; bad input
(unsafe addresses, an address inside the network, a broken JWK Set, a logo that is not a PNG or
WebP, or too large) refused with a message and nothing registered; the secret rotated with a grace
period (the old one works until it ends, the cache notwithstanding); disable, enable, delete; the
registration as TOML that `idp client import` reads back; initial access tokens issued, listed,
spent and revoked; logos served from the provider's own origin."""

from __future__ import annotations

import base64
import html
import io
import re
import time
import tomllib

import pytest
import time_machine

from idp.extensions import db
from idp.oidc import clients, declared
from idp.oidc.models import Client, ClientLogo, InitialAccessToken
from tests.integration.board.conftest import BOARD, text_of

# one backend: the board's forms and answers for client services (registration's storage runs on
# both backends in tests/integration/oidc/test_registration.py)
pytestmark = pytest.mark.one_backend

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 100
FORM = {
    "client_name": "Results service", "description": "See your centre's results.",
    "description_cy": "Gweld canlyniadau eich canolfan.", "initiate_login_uri": "https://results.example/start",
    "redirect_uris": "https://results.example/cb\r\n\r\n  https://results.example/cb2  ",
    "post_logout_redirect_uris": "https://results.example/bye", "backchannel_logout_uri": "",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scopes": ["openid", "profile", "email", "access"], "all_profiles": "some",
    "allowed_profiles": ["results.view", "results.embargoed"], "jwks_uri": "", "jwks": "",
    "id_token_signed_response_alg": "ES256",
}


def _token(http, client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return http.post("/token", data={"grant_type": "client_credentials"},
                     headers={"Authorization": f"Basic {basic}"})


def _registered(response) -> tuple[str, str | None]:
    page = response.get_data(as_text=True)
    client_id = re.search(r'<code class="idp-break" id="client-id">([^<]+)</code>', page).group(1)
    secret = re.search(r'<pre class="idp-copy-text" id="client-secret">([^<]+)</pre>', page)
    return client_id, secret.group(1) if secret else None


def _count(app, model=Client):
    with app.app_context():
        return db.session.query(model).count()


def _logo(data: bytes, name="logo.png"):
    return {"logo": (io.BytesIO(data), name)}


def test_register_a_service_and_use_its_secret(app, client, browser_for, people_here, audit_rows):
    board = browser_for(BOARD)
    page = board.page("/board/services/new")
    assert 'value="client_secret_basic" checked' in page  # what a new service usually is, ticked
    done = board.submit("/board/services/new", FORM, files=_logo(PNG), status=200)
    text = text_of(done.get_data(as_text=True))
    assert "Service registered" in text and "It is not shown again" in text
    client_id, secret = _registered(done)
    assert secret and len(secret) >= 32
    with app.app_context():
        row = db.session.get(Client, client_id)
        assert row.client_name == "Results service" and row.description_cy == "Gweld canlyniadau eich canolfan."
        assert row.redirect_uris == ["https://results.example/cb", "https://results.example/cb2"]
        assert row.scope == "openid profile email access"
        assert row.allowed_profiles == ["results.embargoed", "results.view"]
        assert row.id_token_signed_response_alg == "ES256" and row.secret_hash != secret
        assert db.session.get(ClientLogo, client_id).media_type == "image/png"
    answer = _token(client, client_id, secret)
    assert answer.status_code == 200, answer.get_json()  # at once, no cache to wait for
    assert _token(client, client_id, "x" * 43).status_code == 401
    assert audit_rows(event="client.registered")[0].actor == people_here[BOARD]
    # its page: everything it was given, never the secret
    shown = board.page(f"/board/services/{client_id}")
    assert secret not in shown and "https://results.example/cb2" in text_of(shown)
    assert board.page("/board/services").count(client_id) >= 1


def test_the_admin_api_and_every_profile(app, browser_for, people_here):
    board = browser_for(BOARD)
    done = board.submit("/board/services/new", {**FORM, "admin_api": "y", "all_profiles": "all",
                                                "token_endpoint_auth_method": "none",
                                                "grant_types": ["authorization_code"]}, status=200)
    client_id, secret = _registered(done)
    assert secret is None  # a public client has none
    with app.app_context():
        row = db.session.get(Client, client_id)
        assert row.scope.split()[-1] == "admin_api" and row.allowed_profiles is None


@pytest.mark.parametrize("change, field, message", [
    ({"client_name": ""}, "client_name", "Enter the service's name"),
    ({"redirect_uris": "http://results.example/cb"}, "redirect_uris", "must use https"),
    ({"redirect_uris": "https://results.example/cb#frag"}, "redirect_uris", "must not contain a fragment"),
    ({"redirect_uris": ""}, "redirect_uris", "needs at least one redirect_uri"),
    ({"post_logout_redirect_uris": "javascript:alert(1)"}, "post_logout_redirect_uris", "must use https"),
    ({"initiate_login_uri": "ftp://results.example/"}, "initiate_login_uri", "must use https"),
    # the provider itself calls these: the outbound guard's rules, up front
    ({"backchannel_logout_uri": "https://127.0.0.1/logout"}, "backchannel_logout_uri", "backchannel_logout_uri"),
    ({"backchannel_logout_uri": "https://10.1.2.3/logout"}, "backchannel_logout_uri", "backchannel_logout_uri"),
    ({"backchannel_logout_uri": "https://metadata.internal/logout"}, "backchannel_logout_uri", "backchannel_logout_uri"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://169.254.169.254/keys"}, "jwks_uri",
     "jwks_uri"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks_uri", "private_key_jwt needs jwks or jwks_uri"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks": "{not json"}, "jwks", "not valid JSON"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks": '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'},
     "jwks", "public keys only"),
    ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method", "cannot use client_credentials"),
    ({"token_endpoint_auth_method": "magic"}, "token_endpoint_auth_method", "token_endpoint_auth_method must be one of"),
    ({"grant_types": ["implicit"]}, "grant_types", "grant_types must be"),
    ({"allowed_profiles": ["results.view", "<script>"]}, "allowed_profiles", "allowed_profiles must be"),
    ({"description": "A\x00B"}, "description", "cannot be used here"),
    ({"client_name": "x" * 201}, "client_name", "200 characters or fewer"),
    ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg", "must be one of"),
])
def test_bad_registrations_are_refused_with_a_message_and_register_nothing(app, browser_for, change, field, message):
    board = browser_for(BOARD)
    refused = board.submit("/board/services/new", {**FORM, **change}, status=400)
    page = refused.get_data(as_text=True)
    assert message in text_of(page), text_of(page)[:1500]
    assert f'href="#{field}"' in page  # the error summary leads to the field
    assert _count(app) == 0


@pytest.mark.parametrize("data, name, message", [
    (b"GIF89a" + b"\x00" * 100, "logo.png", "must be a PNG or WebP file"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "logo.webp", "must be a PNG or WebP file"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "logo.png", "PNG or WebP"),
    (PNG + b"\x00" * (100 * 1024), "big.png", "100 KB or smaller"),
    (b"RIFF\x00\x00\x00\x00WAVE", "logo.webp", "PNG or WebP"),
])
def test_a_bad_logo_is_refused_by_its_bytes(app, browser_for, data, name, message):
    board = browser_for(BOARD)
    refused = board.submit("/board/services/new", FORM, files=_logo(data, name), status=400)
    page = refused.get_data(as_text=True)
    assert message in text_of(page) and 'href="#logo"' in page
    assert _count(app) == 0 and _count(app, ClientLogo) == 0


def test_logos_are_served_from_the_providers_origin(app, client, browser_for):
    board = browser_for(BOARD)
    client_id, _ = _registered(board.submit("/board/services/new", FORM, files=_logo(WEBP, "l.webp"), status=200))
    page = board.page(f"/board/services/{client_id}")
    src = re.search(r'<img src="([^"]+)"', page).group(1)
    assert src.startswith(f"/board/services/{client_id}/logo?v=")
    served = client.get(src)  # anyone may load it (All services shows it): no session here
    assert served.status_code == 200 and served.mimetype == "image/webp" and served.data == WEBP
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert client.get(f"/board/services/{client_id}/logo").headers["Cache-Control"] != served.headers["Cache-Control"]
    assert client.get("/board/services/no-such-client/logo").status_code == 404
    # replaced, then removed, from the edit page
    board.submit(f"/board/services/{client_id}/edit", {**FORM, "all_profiles": "all"}, files=_logo(PNG), status=303)
    assert client.get(f"/board/services/{client_id}/logo").data == PNG
    board.submit(f"/board/services/{client_id}/edit", {**FORM, "remove_logo": "y"}, status=303)
    assert client.get(f"/board/services/{client_id}/logo").status_code == 404


def test_change_a_registration(app, browser_for, audit_rows):
    board = browser_for(BOARD)
    client_id, _ = _registered(board.submit("/board/services/new", FORM, status=200))
    page = board.page(f"/board/services/{client_id}/edit")
    assert 'value="Results service"' in page and "https://results.example/cb2" in page
    refused = board.submit(f"/board/services/{client_id}/edit", {**FORM, "redirect_uris": "http://x.example/"},
                           status=400)
    assert "must use https" in text_of(refused.get_data(as_text=True))
    board.submit(f"/board/services/{client_id}/edit", {**FORM, "client_name": "Results (new)"}, status=303)
    with app.app_context():
        assert db.session.get(Client, client_id).client_name == "Results (new)"
    assert audit_rows(event="client.updated")[-1].details["changed"] == ["client_name"]


def test_require_pushed_authorization_requests(app, client, browser_for, audit_rows):
    """The form's tick box, shown on the service's page and kept by an edit that does not touch
    it; the discovery document names the endpoint such a service pushes to."""
    board = browser_for(BOARD)
    client_id, _ = _registered(board.submit("/board/services/new",
                                            {**FORM, "require_pushed_authorization_requests": "y"}, status=200))
    with app.app_context():
        assert db.session.get(Client, client_id).require_pushed_authorization_requests is True
    assert "Pushed authorization requests Required" in text_of(board.page(f"/board/services/{client_id}"))
    edit = board.page(f"/board/services/{client_id}/edit")
    assert re.search(r'name="require_pushed_authorization_requests"[^>]*value="y"[^>]*checked', edit)
    board.submit(f"/board/services/{client_id}/edit", {**FORM, "client_name": "Results (PAR)",
                                                        "require_pushed_authorization_requests": "y"}, status=303)
    with app.app_context():
        assert db.session.get(Client, client_id).require_pushed_authorization_requests is True
    board.submit(f"/board/services/{client_id}/edit", FORM, status=303)  # unticked
    with app.app_context():
        assert db.session.get(Client, client_id).require_pushed_authorization_requests is False
    assert audit_rows(event="client.updated")[-1].details["changed"] == [
        "client_name", "require_pushed_authorization_requests"]
    assert client.get("/.well-known/openid-configuration").get_json()[
        "pushed_authorization_request_endpoint"].endswith("/par")


def test_an_edit_keeps_the_logout_session_setting(app, browser_for):
    """A service registered (by the CLI or the API) to require the sid in logout notices keeps it
    when the board edits another field; the box turns it off only when unticked on purpose."""
    board = browser_for(BOARD)
    client_id, _ = _registered(board.submit("/board/services/new", {
        **FORM, "backchannel_logout_uri": "https://results.example/logout",
        "backchannel_logout_session_required": "y"}, status=200))
    with app.app_context():
        assert db.session.get(Client, client_id).backchannel_logout_session_required is True
    edit = board.page(f"/board/services/{client_id}/edit")
    assert re.search(r'name="backchannel_logout_session_required"[^>]*value="y"[^>]*checked', edit)
    board.submit(f"/board/services/{client_id}/edit", {
        **FORM, "client_name": "Results (renamed)", "backchannel_logout_uri": "https://results.example/logout",
        "backchannel_logout_session_required": "y"}, status=303)
    with app.app_context():
        assert db.session.get(Client, client_id).backchannel_logout_session_required is True


def test_rotate_the_secret_with_a_grace_period(app, client, browser_for, audit_rows):
    board = browser_for(BOARD)
    client_id, first = _registered(board.submit("/board/services/new", FORM, status=200))
    assert _token(client, client_id, first).status_code == 200  # now in this process's cache
    rotated = board.submit(f"/board/services/{client_id}/secret", {"grace": "3600"}, status=200)
    _, second = _registered(rotated)
    assert second != first and "The old secret keeps working until" in text_of(rotated.get_data(as_text=True))
    assert _token(client, client_id, second).status_code == 200
    assert _token(client, client_id, first).status_code == 200  # within the grace period
    assert "The previous secret works until" in text_of(board.page(f"/board/services/{client_id}"))
    with time_machine.travel(time.time() + 3601, tick=False):
        assert _token(client, client_id, first).status_code == 401
        assert _token(client, client_id, second).status_code == 200
    # a second rotation: the secret before the last stops at once, whatever grace is chosen
    _, third = _registered(board.submit(f"/board/services/{client_id}/secret", {"grace": "86400"}, status=200))
    assert _token(client, client_id, first).status_code == 401
    assert _token(client, client_id, second).status_code == 200
    # no grace: the old one stops now
    _, fourth = _registered(board.submit(f"/board/services/{client_id}/secret", {"grace": "0"}, status=200))
    assert _token(client, client_id, third).status_code == 401 and _token(client, client_id, fourth).status_code == 200
    assert [r.details["grace_seconds"] for r in audit_rows(event="client.secret_rotated")] == [3600, 86400, 0]
    board.submit(f"/board/services/{client_id}/secret", {"grace": "-5"}, status=400)  # not a choice offered
    assert _token(client, client_id, fourth).status_code == 200


def test_grace_periods_are_bounded(app):
    with app.app_context():
        created = clients.create({"client_name": "S", "grant_types": ["client_credentials"]}, actor="t",
                                 pepper=app.extensions["idp.pepper"])
        for grace in (-1, 30 * 86400 + 1, True, 1.5, "60"):
            with pytest.raises(clients.ClientMetadataError):
                clients.rotate_secret(created.client.client_id, actor="t", pepper="p", grace_seconds=grace)


def test_disable_enable_and_delete_with_confirmation(app, client, browser_for, audit_rows):
    board = browser_for(BOARD)
    client_id, secret = _registered(board.submit("/board/services/new", FORM, status=200))
    assert "Disable Results service?" in text_of(board.page(f"/board/services/{client_id}/status"))
    board.submit(f"/board/services/{client_id}/status", status=303)
    assert _token(client, client_id, secret).status_code == 401
    assert "Enable Results service?" in text_of(board.page(f"/board/services/{client_id}/status"))
    board.submit(f"/board/services/{client_id}/status", status=303)
    assert _token(client, client_id, secret).status_code == 200
    assert "This cannot be undone" in text_of(board.page(f"/board/services/{client_id}/delete"))
    assert _count(app) == 1
    board.submit(f"/board/services/{client_id}/delete", status=303)
    assert _count(app) == 0 and _token(client, client_id, secret).status_code == 401
    assert [r.event for r in audit_rows(subject=client_id) if r.event != "client.registered"] == \
        ["client.disabled", "client.enabled", "client.deleted"]
    assert board.get(f"/board/services/{client_id}", status=404)


def test_the_registration_as_toml_imports_back_the_same(app, browser_for, tmp_path, monkeypatch):
    board = browser_for(BOARD)
    client_id, secret = _registered(board.submit("/board/services/new", FORM, status=200))
    page = board.page(f"/board/services/{client_id}/toml")
    download = board.get(f"/board/services/{client_id}/toml?download=1")
    assert download.headers["Content-Disposition"] == f'attachment; filename="{client_id}.toml"'
    text = download.get_data(as_text=True)
    assert text.strip() in html.unescape(page)  # the page shows the same file
    data = tomllib.loads(text)
    assert data["client_id"] == client_id and data["client_secret_env"].startswith("CLIENT_SECRET_")
    assert secret not in text
    (tmp_path / f"{client_id}.toml").write_text(text)
    monkeypatch.setenv(data["client_secret_env"], secret)
    with app.app_context():
        before = clients.describe(db.session.get(Client, client_id))
        results = declared.import_folder(str(tmp_path), pepper=app.extensions["idp.pepper"])
        assert results == [{"client_id": client_id, "action": "unchanged"}]
        assert clients.describe(db.session.get(Client, client_id)) == before
        # and into an empty registry: the same registration
        db.session.delete(db.session.get(Client, client_id))
        db.session.commit()
        declared.import_folder(str(tmp_path), pepper=app.extensions["idp.pepper"])
        again = clients.describe(db.session.get(Client, client_id))
        assert {k: v for k, v in again.items()} == before


def test_initial_access_tokens(app, client, browser_for, people_here, audit_rows):
    board = browser_for(BOARD)
    assert "None." in text_of(board.page("/board/services/initial-tokens"))
    for uses, message in (("0", "from 1 to 1000"), ("1001", "from 1 to 1000"), ("two", "from 1 to 1000"),
                          ("", "Enter how many")):
        refused = board.submit("/board/services/initial-tokens", {"lifetime": "3600", "uses": uses}, status=400)
        assert message in text_of(refused.get_data(as_text=True)), uses
    assert _count(app, InitialAccessToken) == 0
    issued = board.submit("/board/services/initial-tokens", {"lifetime": "3600", "uses": "2"}, status=200)
    token = re.search(r'id="initial-token">([^<]+)</pre>', issued.get_data(as_text=True)).group(1)
    listed = text_of(board.page("/board/services/initial-tokens"))
    assert people_here[BOARD] in listed and " 2 Revoke" in listed
    register = {"client_name": "Self-registered", "redirect_uris": ["https://self.example/cb"]}
    made = client.post("/register", json=register, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201
    assert " 1 Revoke" in text_of(board.page("/board/services/initial-tokens"))
    with app.app_context():
        token_hash = db.session.query(InitialAccessToken).one().token_hash
    board.submit("/board/services/initial-tokens/revoke", {"token": token_hash},
                 form_page="/board/services/initial-tokens", status=303)
    assert _count(app, InitialAccessToken) == 0
    assert client.post("/register", json=register, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert board.submit("/board/services/initial-tokens/revoke", {"token": token_hash},
                        form_page="/board/services/initial-tokens", status=404)
    assert [r.event for r in audit_rows(actor=people_here[BOARD]) if "initial_token" in r.event] == \
        ["client.initial_token_issued", "client.initial_token_revoked"]


def test_require_dpop(app, browser_for):
    """The DPoP tick box: kept by the registration, shown on the service's page and in the edit form,
    and in the TOML the registration exports."""
    board = browser_for(BOARD)
    client_id, _ = _registered(board.submit("/board/services/new", {**FORM, "dpop_bound_access_tokens": "y"},
                                            status=200))
    with app.app_context():
        assert db.session.get(Client, client_id).dpop_bound_access_tokens is True
    assert "Sender-constrained tokens Required (DPoP)" in text_of(board.page(f"/board/services/{client_id}"))
    assert re.search(r'name="dpop_bound_access_tokens"[^>]*value="y"[^>]*checked',
                     board.page(f"/board/services/{client_id}/edit"))
    assert "dpop_bound_access_tokens = true" in board.get(f"/board/services/{client_id}/toml?download=1").get_data(
        as_text=True)
    board.submit(f"/board/services/{client_id}/edit", FORM, status=303)  # unticked
    with app.app_context():
        assert db.session.get(Client, client_id).dpop_bound_access_tokens is False
