"""Signing keys: generated at run time in the key folder, rotated without breaking tokens.

Layout of the key folder (private material git-ignored, never committed):
    keyring.json     public metadata of every key: kid, alg, created_at, signs_from, retired_at, drop_at
    <kid>.pem        the PKCS#8 private key, mode 0600

Lifecycle, all derived from timestamps so every process agrees without messaging:
    published   from creation, in JWKS
    signing     from ``signs_from`` (creation + publish_delay on rotation, so relying
                parties see it in JWKS before any token uses it) until a newer key of
                the same alg starts signing, or it is retired
    withdrawn   ``max_jwt_lifetime`` seconds after it stopped signing: no token it
                signed can still be valid, so it leaves JWKS

Each process loads the keyring once and re-reads it only when keyring.json changes
(checked at most once a second), so ``idp keys rotate`` in another process is seen
by running servers without a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .. import protocol

ALGORITHMS = protocol.SIGNING_ALGORITHMS
#: seconds added to publish_delay before a new key signs: ``now`` is a whole second (up to 1 s
#: early) and each process re-reads the folder within KeyCache.CHECK_EVERY (1 s), so without them
#: a relying party could fetch a JWKS without the key ~2 s before it signs (found by
#: tests/integration/test_key_rotation_under_load.py)
PUBLICATION_MARGIN = 2
MANIFEST = "keyring.json"


class KeyringError(Exception):
    """A key operation that cannot be done (unknown kid, last signing key, bad folder)."""


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    alg: str
    created_at: int
    signs_from: int
    retired_at: int | None = None
    #: when it leaves JWKS; None while it may still sign
    drop_at: int | None = None


def _generate_private(alg: str):
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyringError(f"unsupported algorithm {alg!r} (expected one of {', '.join(ALGORITHMS)})")


_IMPORTERS = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}


@dataclass(frozen=True)
class Keyring:
    """An immutable snapshot of the key folder."""

    infos: tuple[KeyInfo, ...]
    private: dict  # kid -> joserfc key (private)

    def _stopped_signing_at(self, info: KeyInfo, now: int) -> int | None:
        if info.retired_at is not None:
            return info.retired_at
        later = [k.signs_from for k in self.infos
                 if k.alg == info.alg and k.retired_at is None and k.signs_from > info.signs_from
                 and k.signs_from <= now]
        return min(later) if later else None

    def stops_signing_at(self, info: KeyInfo) -> int | None:
        """When the key stops (or stopped) signing, as far as is known now: when it was retired, or
        when its successor (already published) takes over; None while nothing is set to replace it."""
        if info.retired_at is not None:
            return info.retired_at
        later = [k.signs_from for k in self.infos
                 if k.alg == info.alg and k.retired_at is None and k.signs_from > info.signs_from]
        return min(later) if later else None

    def waiting(self, alg: str, now: int | None = None) -> list[KeyInfo]:
        """Keys of ``alg`` published but not signing yet (a rotation under way)."""
        now = int(time.time()) if now is None else now
        return [k for k in self.infos if k.alg == alg and k.retired_at is None and k.signs_from > now]

    def signing_key(self, alg: str, now: int | None = None):
        """(kid, private key) that signs for ``alg`` now."""
        now = int(time.time()) if now is None else now
        candidates = [k for k in self.infos
                      if k.alg == alg and k.retired_at is None and k.signs_from <= now]
        if not candidates:
            raise KeyringError(f"no signing key for {alg}; run `idp keys generate --alg {alg}`")
        info = max(candidates, key=lambda k: k.signs_from)
        return info.kid, self.private[info.kid]

    def state(self, info: KeyInfo, max_jwt_lifetime: int, now: int | None = None) -> str:
        now = int(time.time()) if now is None else now
        if info.drop_at is not None and info.drop_at <= now:
            return "withdrawn"
        stopped = self._stopped_signing_at(info, now)
        if stopped is not None:
            return "withdrawn" if stopped + max_jwt_lifetime <= now else "retiring"
        return "signing" if info.signs_from <= now else "published"

    def published(self, max_jwt_lifetime: int, now: int | None = None) -> list[KeyInfo]:
        return [k for k in self.infos if self.state(k, max_jwt_lifetime, now) != "withdrawn"]

    def algorithms(self, now: int | None = None) -> list[str]:
        """Algorithms with a key that signs now."""
        now = int(time.time()) if now is None else now
        return [a for a in ALGORITHMS
                if any(k.alg == a and k.retired_at is None and k.signs_from <= now for k in self.infos)]

    def jwks(self, max_jwt_lifetime: int, now: int | None = None) -> dict:
        keys = []
        for info in self.published(max_jwt_lifetime, now):
            public = self.private[info.kid].as_dict(private=False)
            public.update(kid=info.kid, alg=info.alg, use="sig")
            keys.append(public)
        return {"keys": keys}


class KeyFolder:
    """Reads and changes one key folder. Writers take an exclusive lock; readers never block."""

    def __init__(self, path: Path, publish_delay: int = 300) -> None:
        self.path = Path(path)
        self.publish_delay = publish_delay

    # ---- reading ----
    def _read_infos(self) -> list[KeyInfo]:
        manifest = self.path / MANIFEST
        if not manifest.exists():
            return []
        try:
            data = json.loads(manifest.read_text())
            return [KeyInfo(**item) for item in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"{manifest}: unreadable key manifest ({exc})") from None

    def load(self) -> Keyring:
        infos = self._read_infos()
        private = {}
        for info in infos:
            pem_path = self.path / f"{info.kid}.pem"
            try:
                private[info.kid] = _IMPORTERS[info.alg].import_key(pem_path.read_bytes())
            except FileNotFoundError:
                raise KeyringError(f"{pem_path}: private key file missing") from None
        return Keyring(tuple(infos), private)

    def version(self) -> tuple:
        """Changes whenever keyring.json is rewritten. The inode is part of it because every write
        replaces the file, and two writes within one clock tick can share an mtime."""
        try:
            st = (self.path / MANIFEST).stat()
        except FileNotFoundError:
            return ()
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    # ---- writing ----
    @contextmanager
    def _locked(self):
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_infos(self, infos: list[KeyInfo]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".keyring.")
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": [asdict(i) for i in infos]}, fh, indent=2)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path / MANIFEST)

    def _new_key(self, alg: str, signs_from: int, now: int) -> KeyInfo:
        private = _generate_private(alg)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        kid = _IMPORTERS[alg].import_key(pem).thumbprint()
        target = self.path / f"{kid}.pem"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return KeyInfo(kid=kid, alg=alg, created_at=now, signs_from=signs_from)

    def generate(self, alg: str, *, now_: bool = False, now: int | None = None,
                 unless_waiting: bool = False) -> KeyInfo:
        """Add a key. It signs at once only if ``alg`` has no signing key yet (or ``now_``);
        otherwise it is published first and takes over after ``publish_delay``. With
        ``unless_waiting``, refused while another new key of ``alg`` waits to take over (two
        rotations at once add one key)."""
        if alg not in ALGORITHMS:
            raise KeyringError(f"unsupported algorithm {alg!r} (expected one of {', '.join(ALGORITHMS)})")
        now = int(time.time()) if now is None else now
        with self._locked():
            infos = self._read_infos()
            if unless_waiting and Keyring(tuple(infos), {}).waiting(alg, now):
                raise KeyringError(f"a new {alg} key is already waiting to take over")
            has_signer = any(k.alg == alg and k.retired_at is None and k.signs_from <= now for k in infos)
            signs_from = now if (now_ or not has_signer) else now + self.publish_delay + PUBLICATION_MARGIN
            info = self._new_key(alg, signs_from, now)
            self._write_infos(infos + [info])
            return info

    rotate = generate  # rotation is "publish a successor"; the predecessor retires when it takes over

    def retire(self, kid: str, *, immediately: bool = False, force: bool = False,
               now: int | None = None) -> KeyInfo:
        """Stop a key signing. It stays in JWKS until its tokens expire, unless ``immediately``
        (a compromised key): then it is withdrawn at once and its tokens stop validating."""
        now = int(time.time()) if now is None else now
        with self._locked():
            infos = self._read_infos()
            match = [k for k in infos if k.kid == kid]
            if not match:
                raise KeyringError(f"no key with kid {kid!r}")
            info = match[0]
            others = [k for k in infos if k.alg == info.alg and k.kid != kid and k.retired_at is None]
            if not others and not force:
                raise KeyringError(f"{kid} is the last {info.alg} key; generate a successor first "
                                f"(or pass --force)")
            if others and not any(k.signs_from <= now for k in others):
                # The successor was waiting for publication; with its predecessor gone it must sign now.
                successor = min(others, key=lambda k: k.signs_from)
                infos = [replace(k, signs_from=now) if k.kid == successor.kid else k for k in infos]
            updated = replace(info, retired_at=info.retired_at or now, drop_at=now if immediately else None)
            infos = [updated if k.kid == kid else k for k in infos]
            self._write_infos(infos)
            return updated

    def ensure(self, algorithms=ALGORITHMS) -> list[KeyInfo]:
        """Generate a signing key for every algorithm that has none (first start)."""
        created = []
        now = int(time.time())
        for alg in algorithms:
            infos = self._read_infos()
            if not any(k.alg == alg and k.retired_at is None and k.signs_from <= now for k in infos):
                created.append(self.generate(alg, now=now))
        return created


class KeyCache:
    """The per-process view of the keyring: loaded once, reloaded only when the manifest changes."""

    CHECK_EVERY = 1.0

    def __init__(self, folder: KeyFolder) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._version = None
        self._checked = 0.0
        self._jwks: tuple[int, dict] | None = None

    def ring(self) -> Keyring:
        now = time.monotonic()
        if self._ring is not None and now - self._checked < self.CHECK_EVERY:
            return self._ring
        with self._lock:
            version = self.folder.version()
            if self._ring is None or version != self._version:
                self._ring = self.folder.load()
                self._version = version
                self._jwks = None
            self._checked = now
            return self._ring

    def jwks(self, max_jwt_lifetime: int) -> dict:
        """JWKS, rebuilt at most once a second (state depends on the clock as well as the files)."""
        ring = self.ring()
        second = int(time.time())
        cached = self._jwks
        if cached is not None and cached[0] == second:
            return cached[1]
        doc = ring.jwks(max_jwt_lifetime)
        self._jwks = (second, doc)
        return doc
