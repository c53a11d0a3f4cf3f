"""Key rotation under load: zero failed validations (docs/operations.md, "Rotating signing keys").

gunicorn with two workers on PostgreSQL + Redis issues access tokens (client_credentials, ES256)
to four threads without pause; each token is validated at once by the relying-party kit
(examboard_rp: JWKS cache honouring the provider's max-age, a re-fetch on an unknown kid) and
again later while it is still valid. Meanwhile the runbook is followed three times: rotate ES256 (what
`idp keys rotate --alg ES256` does), wait until the successor signs, retire the predecessor (`idp keys
retire KID`), in this process on the provider's key folder (a command's start-up would only slow the
test down; tests/unit/oidc/test_keys.py and the CLI's tests cover the commands).
Every validation must pass, tokens of at least four keys must have been seen, and retired keys must
have left the JWKS once their tokens expired.

The delays are the production ones scaled down (publication delay and JWKS max-age 2 s, access
tokens 4 s; the kit's own floor on max-age lowered to match), so the whole test takes ~25 s.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter

import pytest
import requests
from examboard_rp.errors import RPError
from examboard_rp.jwks import JWKSCache
from examboard_rp.tokens import AccessTokenValidator

from idp.oidc.keys import KeyFolder
from tests.live_provider import LiveProvider

pytestmark = pytest.mark.shared_store

PUBLISH_DELAY = 2
LIFETIME = 4
ROTATIONS = 3
THREADS = 4


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LiveProvider(tmp_path_factory.mktemp("rotation"), name="rotation", log_level="WARNING") as live:
        live.setup()
        live.env.update({"IDP_KEYS_PUBLISH_DELAY": str(PUBLISH_DELAY), "IDP_KEYS_JWKS_MAX_AGE": str(PUBLISH_DELAY),
                         "IDP_TOKENS_ACCESS_TOKEN_LIFETIME": str(LIFETIME),
                         "IDP_TOKENS_ID_TOKEN_LIFETIME": str(LIFETIME)})
        live.start(workers=2, threads=4)
        yield live


class Load:
    """Threads that get tokens and validate them (at once, and again later) until told to stop."""

    def __init__(self, provider, client: dict, validator: AccessTokenValidator) -> None:
        self.provider, self.validator = provider, validator
        self.basic = "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.validations = 0
        self.kids: Counter = Counter()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def _validate(self, token: str) -> None:
        try:
            access = self.validator.validate(token)
        except RPError as exc:
            with self._lock:
                self.failures.append(f"{time.time():.2f} kid {_kid(token)}: {exc.reason}: {exc.description}")
            return
        with self._lock:
            self.validations += 1
            self.kids[access.claims.get("jti") and _kid(token)] += 1

    def _run(self) -> None:
        http = requests.Session()
        http.trust_env = False
        held: list[tuple[float, str]] = []  # (exp, token) kept to validate again later
        while not self.stop.is_set():
            answer = http.post(self.provider.issuer + "/token", data={"grant_type": "client_credentials"},
                               headers={"Authorization": self.basic}, timeout=10)
            if answer.status_code != 200:
                with self._lock:
                    self.failures.append(f"token endpoint: HTTP {answer.status_code} {answer.text[:200]}")
                continue
            token = answer.json()["access_token"]
            self._validate(token)
            held.append((time.time() + LIFETIME, token))
            # a token from earlier, still valid for a second or more: the key that signed it is
            # still published, whatever happened to it since
            held = [(exp, t) for exp, t in held if exp - time.time() > 1][-50:]
            if held:
                self._validate(random.choice(held)[1])


def _kid(token: str) -> str:
    import json

    header = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def signing_kid(folder: KeyFolder, alg: str) -> str:
    return folder.load().signing_key(alg)[0]


def test_rotating_and_retiring_keys_under_load_fails_no_validation(provider):
    client = provider.create_client("rotation load", grant_types=["client_credentials"])
    keys = JWKSCache(provider.issuer + "/jwks.json", min_ttl=1, refresh_interval=1)
    validator = AccessTokenValidator(provider.issuer, client["client_id"], keys, leeway=0)
    load = Load(provider, client, validator)
    for thread in load.threads:
        thread.start()
    folder = KeyFolder(provider.workdir / "keys", publish_delay=PUBLISH_DELAY)
    retired = []
    try:
        time.sleep(1)
        for _ in range(ROTATIONS):
            predecessor = signing_kid(folder, "ES256")
            successor = folder.rotate("ES256")
            time.sleep(max(0.0, successor.signs_from - time.time()) + 0.5)  # it signs; the predecessor retires
            folder.retire(predecessor)
            retired.append(predecessor)
        time.sleep(LIFETIME + 1.5)  # the last predecessor's tokens expire; it leaves the JWKS
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(timeout=30)

    assert load.failures == [], load.failures[:10]
    assert load.validations > 100, load.validations
    assert len(load.kids) >= ROTATIONS + 1, load.kids  # tokens of every key were validated
    published = {k["kid"] for k in requests.get(provider.issuer + "/jwks.json", timeout=5).json()["keys"]}
    assert not published & set(retired), "a retired key is still published after its tokens expired"
    assert keys.fetches >= ROTATIONS  # the kit followed the rotations by re-fetching the JWKS
