"""A real provider process for interop tests and benchmarks: its own PostgreSQL database, its own
Redis key prefix, fresh signing keys, `idp setup`, and gunicorn (gthread) on a free loopback port,
optionally over TLS with a throwaway certificate.

Used by tests/interop/ and tests/perf/; not a test module. Settings reach every process through
the documented IDP_* environment variables only.

    with LiveProvider(tmp_path, name="interop", tls=True) as provider:
        provider.setup()                       # database, `idp setup`
        person = provider.make_account(...)    # through the app factory
        rp = provider.create_client(...)       # `idp client create`
        provider.start(workers=2)              # gunicorn, waits for /healthz
        ...
    # gunicorn stopped, database dropped, Redis keys deleted
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Self

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ProviderError(RuntimeError):
    """The provider (or PostgreSQL/Redis under it) could not be set up or started."""


def admin_database_url() -> str:
    return os.environ.get("IDP_TEST_DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("IDP_TEST_REDIS_URL") or DEFAULT_REDIS_URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env() -> dict:
    """This process's environment without any IDP_* setting (ours are added explicitly) and
    without proxies (everything here is loopback)."""
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    return {k: v for k, v in os.environ.items() if not k.startswith("IDP_") and k.lower() not in drop}


def idp_command() -> list[str]:
    script = Path(sys.executable).with_name("idp")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from idp.cli import main; sys.exit(main())"]


# ------------------------------------------------------------------ TLS
def write_tls_files(folder: Path, hosts=("localhost",), ips=("127.0.0.1", "::1")) -> dict:
    """A throwaway CA and a server certificate it signed (EC P-256, valid one day) for loopback.

    Returns {"ca": path, "cert": path, "key": path}. Trust ``ca`` (NODE_EXTRA_CA_CERTS, cafile);
    serve ``cert`` + ``key``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"idp test CA {uuid.uuid4().hex[:8]}")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


# ------------------------------------------------------------------ the provider
class LiveProvider:
    def __init__(self, workdir: Path, *, name: str = "live", tls: bool = False,
                 log_level: str = "INFO", metrics: bool = False, redis: str | None = None,
                 database: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.issuer = f"{scheme}://localhost:{self.port}"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.db_name = f"idp_{name}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.prefix = f"idp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
        self.tls_files = write_tls_files(self.workdir / "tls") if tls else None
        self.proc: subprocess.Popen | None = None
        self.stderr_path = self.workdir / "gunicorn.stderr"
        self._stderr = None
        self._db_created = False
        self._app = None
        self.database_url = ""
        self.env: dict[str, str] = {}
        self.log_level = log_level
        #: the store's URL: IDP_TEST_REDIS_URL, or a Sentinel or Cluster set-up of the test's own
        self.redis_url = redis or redis_url()
        #: a PostgreSQL URL to create this provider's database through: IDP_TEST_DATABASE_URL, or a
        #: server of the test's own
        self.admin_url = database or admin_database_url()
        #: where the gunicorn master serves /metrics (``metrics=True``), else None
        self.metrics_port = free_port() if metrics else None

    # -------------------------------------------------------------- context manager
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- setup
    def setup(self) -> None:
        """Check PostgreSQL and Redis answer, create the database, run `idp setup`."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from idp.config import mask_url

        admin_url = self.admin_url
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
            admin.dispose()
        except Exception as exc:
            raise ProviderError(f"PostgreSQL at {mask_url(admin_url)} does not answer or refused "
                                f"CREATE DATABASE (set IDP_TEST_DATABASE_URL): {exc}") from exc
        self._db_created = True
        self.database_url = make_url(admin_url).set(database=self.db_name).render_as_string(
            hide_password=False)
        try:
            from idp.store import RedisStore

            probe = RedisStore(self.redis_url)
            probe.ping()
            probe.close()
        except Exception as exc:
            raise ProviderError(f"Redis at {self.redis_url} does not answer (set IDP_TEST_REDIS_URL): "
                                f"{exc}") from exc

        self.env = {
            "IDP_ISSUER": self.issuer,
            "IDP_DATABASE_URL": self.database_url,
            "IDP_REDIS_URL": self.redis_url,
            "IDP_STORE_PREFIX": self.prefix,
            "IDP_KEYS_DIR": str(self.workdir / "keys"),
            "IDP_DATA_DIR": str(self.workdir / "var"),
            "IDP_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "IDP_LOGGING_LEVEL": self.log_level,
        }
        if self.metrics_port:
            self.env["IDP_METRICS_LISTEN"] = f"127.0.0.1:{self.metrics_port}"
        self.run_idp("setup")

    def run_idp(self, *args: str) -> dict | list:
        """Run an `idp` command with this provider's settings; its JSON output."""
        done = subprocess.run(idp_command() + list(args), cwd=self.workdir, env={**base_env(), **self.env},
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise ProviderError(f"`idp {' '.join(args)}` exited {done.returncode}:\n{done.stderr[-3000:]}")
        try:
            return json.loads(done.stdout)
        except ValueError as exc:
            raise ProviderError(f"`idp {' '.join(args)}` printed no JSON: {done.stdout[-2000:]!r}") from exc

    def app(self):
        """The Flask app built by the app factory from exactly the settings the server uses."""
        if self._app is None:
            from idp import config, create_app

            self._app = create_app(config.load(None, env=self.env))
        return self._app

    def make_account(self, **kwargs) -> dict:
        """A centre + account through tests.support.make_account; returns {sub, email, role, centre}."""
        from tests.support import make_account

        with self.app().app_context():
            account = make_account(**kwargs)
            return {"sub": account.sub, "email": account.email, "role": account.role,
                    "centre": account.centre_number, "id": account.id}

    def add_totp(self, email: str, label: str = "interop app") -> str:
        """Give the account an authenticator-app (TOTP) second factor, preferred, as enrolment would
        leave it; returns the base32 secret so a client can compute codes."""
        from idp.accounts.models import Account
        from idp.extensions import db
        from tests import support

        with self.app().app_context():
            account = db.session.query(Account).filter_by(email_key=Account.key_for(email)).one()
            secret = support.add_totp(account, label)
            db.session.commit()
            return secret

    def mint_refresh_tokens(self, client_id: str, email: str, count: int = 1,
                            scope: str = "openid offline_access") -> list[str]:
        """Refresh tokens for one person, each its own grant, stored exactly as the token endpoint
        stores a grant's first one (for a benchmark's pool, or a race without a sign-in first)."""
        import time

        from idp import protocol, secrets
        from idp.accounts.models import Account
        from idp.extensions import db
        from idp.oidc import tokens
        from idp.oidc.clients import get as get_client

        minted = []
        with self.app().app_context():
            account = db.session.query(Account).filter_by(email_key=Account.key_for(email)).one()
            client, now = get_client(client_id), int(time.time())
            for _ in range(count):
                principal = tokens.Principal(account=account, auth_time=now, amr=["pwd", "otp"], acr=protocol.ACR_MFA,
                                             sid=None, grant_id=secrets.token(16))
                value = secrets.token(32)
                tokens.save_refresh_token(value, client, principal, scope)
                minted.append(value)
            db.session.commit()
        return minted

    def create_client(self, name: str, redirect_uris=(), grant_types=(), auth_method="client_secret_basic",
                      extra=()) -> dict:
        args = ["client", "create", "--name", name, "--auth-method", auth_method]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        for grant in grant_types:
            args += ["--grant-type", grant]
        return self.run_idp(*args, *extra)

    # -------------------------------------------------------------- gunicorn
    def start(self, workers: int = 2, threads: int = 4, timeout: float = 60) -> None:
        # -c python:idp.serving: the hooks the operations guide documents (metrics when configured)
        cmd = [sys.executable, "-m", "gunicorn", "-c", "python:idp.serving", "-w", str(workers), "-k", "gthread",
               "--threads", str(threads),
               "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "--timeout", "60"]
        if self.tls:
            cmd += ["--certfile", str(self.tls_files["cert"]), "--keyfile", str(self.tls_files["key"])]
        cmd.append("idp:create_app()")
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env={**base_env(), **self.env},
                                     stdout=self._stderr, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(time.monotonic() + timeout)

    def scrape(self, timeout: float = 5) -> str:
        """The exporter's /metrics text (``metrics=True``)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=timeout) as response:
            return response.read().decode()

    def password_attempt(self, email: str, password: str) -> str:
        """The email and password pages, as a browser fills them (a new browser each time); the
        password page's answer (a redirect onwards, or the page saying what was wrong)."""
        import re

        import requests

        http = requests.Session()
        http.trust_env = False
        csrf = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
        page = http.get(self.issuer + "/signin", timeout=10)
        page.raise_for_status()
        step = http.post(self.issuer + "/signin", data={"email": email, "csrf_token": csrf.search(page.text)[1]},
                         allow_redirects=False, timeout=10)
        if step.status_code != 303:
            raise ProviderError(f"the email page answered {step.status_code}: {step.text[:300]}")
        password_page = self.issuer + step.headers["Location"]
        page = http.get(password_page, timeout=10)
        page.raise_for_status()
        answer = http.post(password_page, data={"password": password, "csrf_token": csrf.search(page.text)[1]},
                           allow_redirects=False, timeout=10)
        return f"HTTP {answer.status_code} {answer.headers.get('Location', '')}\n{answer.text}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls_files["ca"])) if self.tls else None

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.ssl_context()))
        try:
            with opener.open(self.issuer + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, deadline: float) -> None:
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _ = self.get("/healthz", timeout=2)
                if status == 200 and self.get("/readyz", timeout=5)[0] == 200:
                    return
                last = f"HTTP {status}"
            except (OSError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise ProviderError(f"gunicorn did not become ready at {self.issuer} (exit {self.proc.poll()}, "
                            f"last: {last}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the gunicorn arbiter: it stops its own workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
                self.proc.wait(timeout=5)
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        code, self.proc = self.proc.returncode, None
        return code

    # -------------------------------------------------------------- teardown
    def close(self) -> None:
        """Stop gunicorn, drop the database, delete this provider's Redis keys. Never raises."""
        errors = []
        try:
            self.stop()
        except Exception as exc:  # noqa: BLE001 - teardown keeps going
            errors.append(f"stop: {exc}")
        if self._app is not None:
            try:
                self._app.extensions["idp.db"].dispose()
                self._app.extensions["idp.store"].close()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"app: {exc}")
            self._app = None
        if self._db_created:
            try:
                from sqlalchemy import create_engine, text

                admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
                admin.dispose()
                self._db_created = False
            except Exception as exc:  # noqa: BLE001
                errors.append(f"drop database {self.db_name}: {exc}")
        if self.env:
            try:
                from idp.store import RedisStore

                store = RedisStore(self.redis_url)
                r = store.client
                batch = []
                # the store's keys, and the rate limiter's (the limits library puts its own words
                # before the prefix)
                for pattern in (self.prefix + "*", f"LIMITS:LIMITER/{self.prefix}*"):
                    for key in r.scan_iter(match=pattern, count=1000):
                        batch.append(key)
                        if len(batch) >= 1000:
                            r.delete(*batch)
                            batch = []
                if batch:
                    r.delete(*batch)
                store.close()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"redis cleanup: {exc}")
        if errors:
            print("live_provider teardown: " + "; ".join(errors), file=sys.stderr)
