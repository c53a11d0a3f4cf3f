"""idp/oidc/keys.py: key generation, the rotation lifecycle (published -> signing -> retiring ->
withdrawn), retirement, the per-process KeyCache, and the JWKS endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.oidc import keys as keys_module
from idp.oidc.keys import ALGORITHMS, PUBLICATION_MARGIN, KeyCache, KeyFolder, KeyringError

T0 = 1_800_000_000
DELAY = 300          # publish_delay
LIFETIME = 600       # max_jwt_lifetime
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rfc7638_thumbprint(jwk: dict) -> str:
    """Computed here from the RFC, not with the library the code under test uses."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


def kids(doc: dict) -> set[str]:
    return {k["kid"] for k in doc["keys"]}


@pytest.fixture
def folder(tmp_path) -> KeyFolder:
    """A key folder with one signing key per algorithm, all created at T0."""
    f = KeyFolder(tmp_path / "keys", publish_delay=DELAY)
    for alg in ALGORITHMS:
        f.generate(alg, now=T0)
    return f


def kid_of(folder: KeyFolder, alg: str) -> str:
    return folder.load().signing_key(alg, now=T0)[0]


# ----------------------------------------------------------------- ensure
def test_ensure_makes_one_key_per_algorithm(tmp_path):
    path = tmp_path / "keys"
    created = KeyFolder(path).ensure()
    assert sorted(k.alg for k in created) == sorted(["RS256", "ES256", "EdDSA"])
    assert len({k.kid for k in created}) == 3
    ring = KeyFolder(path).load()
    for info in created:
        kid, _ = ring.signing_key(info.alg)
        assert kid == info.kid
        pem = path / f"{info.kid}.pem"
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600, pem
        assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    manifest = json.loads((path / "keyring.json").read_text())
    assert {k["kid"] for k in manifest["keys"]} == {k.kid for k in created}
    assert "BEGIN" not in (path / "keyring.json").read_text()


def test_ensure_is_idempotent(tmp_path):
    folder = KeyFolder(tmp_path / "keys")
    first = folder.ensure()
    assert folder.ensure() == []
    assert [k.kid for k in folder.load().infos] == [k.kid for k in first]


def test_ensure_only_fills_missing_algorithms(tmp_path):
    folder = KeyFolder(tmp_path / "keys")
    es = folder.generate("ES256")
    created = folder.ensure()
    assert sorted(k.alg for k in created) == ["EdDSA", "RS256"]
    assert es.kid in {k.kid for k in folder.load().infos}


def test_kids_are_rfc7638_thumbprints(folder):
    ring = folder.load()
    doc = ring.jwks(LIFETIME, now=T0)
    assert len(doc["keys"]) == 3
    for jwk in doc["keys"]:
        assert jwk["kid"] == rfc7638_thumbprint(jwk)
    assert {(k["kty"], k["alg"]) for k in doc["keys"]} == {("RSA", "RS256"), ("EC", "ES256"), ("OKP", "EdDSA")}
    ec = next(k for k in doc["keys"] if k["kty"] == "EC")
    okp = next(k for k in doc["keys"] if k["kty"] == "OKP")
    assert ec["crv"] == "P-256" and okp["crv"] == "Ed25519"
    rsa = next(k for k in doc["keys"] if k["kty"] == "RSA")
    assert len(base64.urlsafe_b64decode(rsa["n"] + "==")) * 8 >= 2048


def test_jwks_has_no_private_members(folder):
    for jwk in folder.load().jwks(LIFETIME, now=T0)["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig"


def test_generate_rejects_unknown_algorithm(folder):
    with pytest.raises(KeyringError, match="HS256"):
        folder.generate("HS256")


def test_first_key_of_an_algorithm_signs_at_once(tmp_path):
    folder = KeyFolder(tmp_path / "keys", publish_delay=DELAY)
    info = folder.generate("ES256", now=T0)
    assert info.signs_from == T0
    assert folder.load().signing_key("ES256", now=T0)[0] == info.kid


def test_no_signing_key_for_missing_algorithm(tmp_path):
    folder = KeyFolder(tmp_path / "keys")
    folder.generate("ES256", now=T0)
    with pytest.raises(KeyringError, match="RS256"):
        folder.load().signing_key("RS256", now=T0)
    assert folder.load().algorithms(now=T0) == ["ES256"]


# ----------------------------------------------------------------- rotation lifecycle
def test_rotation_lifecycle(folder):
    old = kid_of(folder, "ES256")
    t_rotate = T0 + 1000
    new = folder.rotate("ES256", now=t_rotate)
    assert new.signs_from == t_rotate + DELAY + PUBLICATION_MARGIN  # published in every process for DELAY
    takeover = new.signs_from
    ring = folder.load()
    old_info = next(k for k in ring.infos if k.kid == old)

    # published at once, but the old key keeps signing until publish_delay has passed
    for now in (t_rotate, takeover - 1):
        assert new.kid in kids(ring.jwks(LIFETIME, now=now))
        assert old in kids(ring.jwks(LIFETIME, now=now))
        assert ring.signing_key("ES256", now=now)[0] == old
        assert ring.state(new, LIFETIME, now=now) == "published"
        assert ring.state(old_info, LIFETIME, now=now) == "signing"

    # it takes over; the predecessor stays published while its tokens may still be valid
    for now in (takeover, takeover + LIFETIME - 1):
        assert ring.signing_key("ES256", now=now)[0] == new.kid
        assert ring.state(new, LIFETIME, now=now) == "signing"
        assert ring.state(old_info, LIFETIME, now=now) == "retiring"
        assert {old, new.kid} <= kids(ring.jwks(LIFETIME, now=now))

    # then it is withdrawn and leaves JWKS
    gone = takeover + LIFETIME
    assert ring.state(old_info, LIFETIME, now=gone) == "withdrawn"
    assert old not in kids(ring.jwks(LIFETIME, now=gone))
    assert new.kid in kids(ring.jwks(LIFETIME, now=gone))
    assert len(ring.jwks(LIFETIME, now=gone)["keys"]) == 3

    # the other algorithms are untouched throughout
    for alg in ("RS256", "EdDSA"):
        assert ring.signing_key(alg, now=gone)[0] == kid_of(folder, alg)


def test_rotation_with_now_signs_at_once(folder):
    old = kid_of(folder, "RS256")
    new = folder.rotate("RS256", now_=True, now=T0 + 50)
    ring = folder.load()
    assert ring.signing_key("RS256", now=T0 + 50)[0] == new.kid
    assert ring.state(next(k for k in ring.infos if k.kid == old), LIFETIME, now=T0 + 50) == "retiring"


def test_two_pending_successors_newest_wins(folder):
    first = folder.rotate("ES256", now=T0 + 10)
    second = folder.rotate("ES256", now=T0 + 20)
    ring = folder.load()
    assert ring.signing_key("ES256", now=T0 + 10 + DELAY + PUBLICATION_MARGIN)[0] == first.kid
    assert ring.signing_key("ES256", now=T0 + 20 + DELAY + PUBLICATION_MARGIN)[0] == second.kid
    assert ring.state(first, LIFETIME, now=T0 + 20 + DELAY + PUBLICATION_MARGIN) == "retiring"


def test_kids_stay_distinct_across_rotations(folder):
    for i in range(3):
        folder.rotate("EdDSA", now=T0 + i)
    infos = folder.load().infos
    assert len(infos) == 6
    assert len({k.kid for k in infos}) == 6


def test_concurrent_writers_lose_no_key(tmp_path):
    path = tmp_path / "keys"
    KeyFolder(path).generate("ES256", now=T0)
    errors = []

    def rotate():
        try:
            KeyFolder(path).rotate("ES256", now=T0 + 1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(KeyFolder(path).load().infos) == 9


# ----------------------------------------------------------------- retire
def test_retire_refuses_last_key_without_force(folder):
    kid = kid_of(folder, "EdDSA")
    with pytest.raises(KeyringError, match="last EdDSA key"):
        folder.retire(kid, now=T0 + 5)
    assert folder.load().signing_key("EdDSA", now=T0 + 5)[0] == kid


def test_retire_last_key_with_force(folder):
    kid = kid_of(folder, "EdDSA")
    info = folder.retire(kid, force=True, now=T0 + 5)
    assert info.retired_at == T0 + 5
    ring = folder.load()
    with pytest.raises(KeyringError):
        ring.signing_key("EdDSA", now=T0 + 5)
    assert ring.state(info, LIFETIME, now=T0 + 5) == "retiring"
    assert kid in kids(ring.jwks(LIFETIME, now=T0 + 5 + LIFETIME - 1))
    assert kid not in kids(ring.jwks(LIFETIME, now=T0 + 5 + LIFETIME))
    assert "EdDSA" not in ring.algorithms(now=T0 + 5)


def test_retire_unknown_kid(folder):
    with pytest.raises(KeyringError, match="no key"):
        folder.retire("not-a-kid", now=T0)


def test_retire_hands_over_to_a_pending_successor(folder):
    old = kid_of(folder, "ES256")
    new = folder.rotate("ES256", now=T0 + 10)
    folder.retire(old, now=T0 + 20)  # the successor was still waiting for publication
    ring = folder.load()
    assert ring.signing_key("ES256", now=T0 + 20)[0] == new.kid
    assert old in kids(ring.jwks(LIFETIME, now=T0 + 20))


def test_retire_immediately_withdraws_at_once(folder):
    old = kid_of(folder, "ES256")
    new = folder.rotate("ES256", now_=True, now=T0 + 10)
    info = folder.retire(old, immediately=True, now=T0 + 20)
    ring = folder.load()
    assert ring.state(info, LIFETIME, now=T0 + 20) == "withdrawn"
    doc = ring.jwks(LIFETIME, now=T0 + 20)
    assert old not in kids(doc)
    assert new.kid in kids(doc)
    assert ring.signing_key("ES256", now=T0 + 20)[0] == new.kid


def test_retire_immediately_still_refuses_last_key(folder):
    kid = kid_of(folder, "RS256")
    with pytest.raises(KeyringError):
        folder.retire(kid, immediately=True, now=T0 + 1)
    assert kid in kids(folder.load().jwks(LIFETIME, now=T0 + 1))


# ----------------------------------------------------------------- loading errors
def test_missing_private_key_file(folder):
    kid = kid_of(folder, "ES256")
    (folder.path / f"{kid}.pem").unlink()
    with pytest.raises(KeyringError, match=f"{kid}.pem"):
        folder.load()


def test_unreadable_manifest(folder):
    (folder.path / "keyring.json").write_text("{not json")
    with pytest.raises(KeyringError, match="keyring.json"):
        folder.load()


def test_empty_folder_loads_empty(tmp_path):
    ring = KeyFolder(tmp_path / "nothing").load()
    assert ring.infos == ()
    assert ring.jwks(LIFETIME) == {"keys": []}


# ----------------------------------------------------------------- signing and verifying
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_token_signed_with_signing_key_verifies_against_jwks(folder, alg):
    ring = folder.load()
    kid, key = ring.signing_key(alg, now=T0)
    token = jwt.encode({"alg": alg, "kid": kid}, {"iss": "http://localhost", "sub": "abc"}, key,
                       algorithms=[alg])
    published = KeySet.import_key_set(json.loads(json.dumps(ring.jwks(LIFETIME, now=T0))))
    decoded = jwt.decode(token, published, algorithms=[alg])
    assert decoded.claims["sub"] == "abc"
    assert decoded.header["kid"] == kid

    # once the key is withdrawn, the published set no longer verifies its tokens
    folder.rotate(alg, now_=True, now=T0 + 1)
    folder.retire(kid, immediately=True, now=T0 + 2)
    later = KeySet.import_key_set(folder.load().jwks(LIFETIME, now=T0 + 2))
    with pytest.raises(JoseError):  # no key in the set has the token's kid
        jwt.decode(token, later, algorithms=[alg])


# ----------------------------------------------------------------- KeyCache
@pytest.fixture
def count_loads(monkeypatch):
    calls = []
    original = KeyFolder.load

    def counting(self):
        calls.append(self.path)
        return original(self)

    monkeypatch.setattr(KeyFolder, "load", counting)
    return calls


def test_cache_does_not_reread_on_every_call(keys_dir, count_loads):
    cache = KeyCache(KeyFolder(keys_dir))
    rings = [cache.ring() for _ in range(200)]
    docs = [cache.jwks(LIFETIME) for _ in range(200)]
    assert len(count_loads) == 1
    assert all(r is rings[0] for r in rings)
    assert len(docs[-1]["keys"]) == 3


def test_cache_checking_often_still_loads_only_on_change(keys_dir, count_loads, monkeypatch):
    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 0)
    cache = KeyCache(KeyFolder(keys_dir))
    for _ in range(100):
        cache.ring()
    assert len(count_loads) == 1


def test_cache_reloads_after_another_instance_rotates(keys_dir, count_loads, monkeypatch):
    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 0)
    manifest = keys_dir / keys_module.MANIFEST
    written = manifest.stat().st_mtime_ns - 10**10  # written well before, as in real life
    os.utime(manifest, ns=(written, written))
    cache = KeyCache(KeyFolder(keys_dir))
    before = kids(cache.jwks(LIFETIME))
    assert len(before) == 3
    new = KeyFolder(keys_dir).rotate("ES256")  # e.g. `idp keys rotate` in another process
    ring = cache.ring()
    assert new.kid in {k.kid for k in ring.infos}
    assert len(count_loads) == 2
    # a reload drops the JWKS built from the old ring, even within the same second
    assert kids(cache.jwks(LIFETIME)) == before | {new.kid}


def test_cache_waits_check_every_before_looking(keys_dir, count_loads, monkeypatch):
    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 3600)
    cache = KeyCache(KeyFolder(keys_dir))
    cache.ring()
    KeyFolder(keys_dir).rotate("ES256")
    assert len(cache.ring().infos) == 3  # not looked yet
    assert len(count_loads) == 1


def test_cache_sees_a_change_made_in_the_same_clock_tick(keys_dir, monkeypatch):
    """File timestamps are coarse (a kernel tick, a few ms): two manifest writes close together
    can carry the same st_mtime_ns. A change must not be missed because of that."""
    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 0)
    writer = KeyFolder(keys_dir)
    writer.rotate("ES256")
    manifest = keys_dir / keys_module.MANIFEST
    tick = manifest.stat().st_mtime_ns
    cache = KeyCache(KeyFolder(keys_dir))
    assert len(cache.ring().infos) == 4
    new = writer.rotate("EdDSA")
    os.utime(manifest, ns=(tick, tick))  # what a write within the same tick looks like
    assert new.kid in {k.kid for k in cache.ring().infos}


# ----------------------------------------------------------------- the JWKS endpoint
def test_jwks_endpoint(client, keys_dir):
    response = client.get("/jwks.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "max-age=300" in response.headers["Cache-Control"]
    doc = response.get_json()
    assert len(doc["keys"]) == 3
    on_disk = {k["kid"] for k in json.loads((keys_dir / "keyring.json").read_text())["keys"]}
    assert kids(doc) == on_disk
    for jwk in doc["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["kid"] == rfc7638_thumbprint(jwk)
        assert jwk["use"] == "sig"
    assert "PRIVATE" not in response.get_data(as_text=True)


def test_jwks_endpoint_max_age_follows_settings(make_settings):
    from idp import create_app

    app = create_app(make_settings(keys={"jwks_max_age": 123}))
    try:
        response = app.test_client().get("/jwks.json")
        assert response.status_code == 200
        cache_control = response.headers["Cache-Control"]
        assert "max-age=123" in cache_control and "public" in cache_control
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
