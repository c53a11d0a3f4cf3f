"""Settings: TOML file -> environment overrides -> frozen, typed dataclasses.

Every setting is declared once, in the dataclasses below; the file loader, the
environment overrides (``IDP_<SECTION>_<KEY>``, plus the short aliases in
``ENV_ALIASES``) and ``config.example.toml`` all follow that declaration. Any
error names the source, the key and what was expected, so start-up can print
one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import inputs, protocol


class ConfigError(Exception):
    """A setting is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class ServerSettings:
    #: The issuer URL; every token's ``iss`` and every endpoint hang off it.
    #: Empty means ``http://{host}:{port}`` of ``idp serve`` (localhost development only).
    issuer: str = ""
    #: Folder for the SQLite file, the mail/SMS outboxes and the generated secret key.
    data_dir: str = "var"
    #: Signs the session cookie and CSRF tokens. Empty: generated once into data_dir.
    secret_key: str = ""
    #: Key of the keyed hash for client secrets and refresh tokens. Changing it invalidates
    #: every client secret and refresh token. Empty: generated once into data_dir.
    pepper: str = ""
    #: Number of reverse proxies in front whose X-Forwarded-* headers are trusted.
    trusted_proxies: int = 0


@dataclass(frozen=True)
class DatabaseSettings:
    #: SQLAlchemy URL. Empty: SQLite file ``{data_dir}/idp.sqlite3``.
    url: str = ""
    pool_size: int = 10


@dataclass(frozen=True)
class StoreSettings:
    #: Redis URL for short-lived shared state: ``redis://`` (one server), ``redis+sentinel://``
    #: (a primary watched by Sentinels) or ``redis+cluster://`` (idp.store.redis_client).
    #: Empty: in-process (one process only).
    redis_url: str = ""
    #: Prefix for every key, so several providers can share one Redis (no braces: on a Cluster a
    #: {hash tag} would put every key in one slot).
    prefix: str = "idp:"
    #: Replicas that must have each write (Redis WAIT, up to 1 s) before it counts; a write that
    #: does not reach them fails closed (503). 1 with Sentinel: a failover loses no used code,
    #: counter or revocation. 0: the primary's word is enough. Not with a Cluster.
    wait_for_replicas: int = 0


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics, served apart from the public site (idp.metrics, idp.ops.exporter)."""

    #: host:port where the exporter serves /metrics, e.g. "127.0.0.1:9464" (a loopback or internal
    #: address: it is never on the public listener). Empty: nothing is counted or served.
    listen: str = ""
    #: Folder where every worker process writes its values (prometheus_client's multiprocess mode),
    #: emptied when the server starts. Empty: {data_dir}/metrics.
    dir: str = ""


@dataclass(frozen=True)
class HousekeepingSettings:
    """Deleting rows nothing can use any more (idp.admin.housekeeping), by the server itself."""

    #: Minutes between purges, run by one process of the whole service (the one that takes the
    #: store's lock). 0: never by the server; run ``idp db purge`` on a schedule of your own.
    purge_every_minutes: int = 60


@dataclass(frozen=True)
class KeysSettings:
    #: Folder holding signing keys (private files 0600). Relative paths are from the working directory.
    dir: str = "keys"
    #: Seconds a new key is published in JWKS before it starts signing (at least the JWKS max-age).
    publish_delay: int = 300
    #: Cache-Control max-age of the JWKS document, in seconds.
    jwks_max_age: int = 300
    id_token_alg: str = protocol.DEFAULT_ID_TOKEN_ALGORITHM
    access_token_alg: str = protocol.DEFAULT_ACCESS_TOKEN_ALGORITHM
    #: Days after which the board console warns that a signing key is due for rotation.
    rotate_after_days: int = 90


@dataclass(frozen=True)
class TokenSettings:
    access_token_lifetime: int = 600
    id_token_lifetime: int = 600
    refresh_token_lifetime: int = 8 * 3600
    authorization_code_lifetime: int = 60
    #: Seconds a pushed authorization request's request_uri may be used for (RFC 9126).
    pushed_request_lifetime: int = 60
    #: Seconds a DPoP proof (RFC 9449) is accepted after its ``iat``; its ``jti`` is remembered as
    #: long, so a proof is used once. Server nonces, when required, change every this many seconds.
    dpop_proof_max_age: int = 300
    #: Require every DPoP proof to carry a nonce this provider handed out (RFC 9449 §8): a proof
    #: made in advance, or on a client's clock that is wrong, is then refused.
    dpop_nonce_required: bool = False
    #: Seconds a client's cached registration may be used before it is re-read. A backstop only:
    #: changes made through the provider reach every process's cache at once (store notices).
    client_cache_seconds: int = 30


@dataclass(frozen=True)
class SessionSettings:
    #: ``__Host-`` cookies need Secure and no Domain; on a plain-http localhost issuer the
    #: prefix is dropped because browsers refuse it there.
    cookie_name: str = "__Host-idp_session"
    same_site: str = "Lax"


@dataclass(frozen=True)
class MailSettings:
    #: "outbox" writes one .eml per message under outbox_dir; "smtp" sends over SMTP.
    backend: str = "outbox"
    from_address: str = "no-reply@localhost"
    outbox_dir: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 587
    #: "starttls", "tls" (implicit TLS) or "none" (only for a local relay).
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 10.0


@dataclass(frozen=True)
class SmsSettings:
    #: "outbox" writes one .json per message under outbox_dir; "twilio" uses Twilio's REST API.
    backend: str = "outbox"
    outbox_dir: str = ""
    sender: str = "ExamBoard"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_base_url: str = "https://api.twilio.com"


@dataclass(frozen=True)
class MfaSettings:
    #: AES-256-GCM keys (base64, 32 bytes) for TOTP secrets at rest, comma-separated: the first
    #: encrypts, all decrypt (rotate by putting a new key first). Empty: generated into data_dir.
    encryption_keys: str = ""
    #: Name shown in authenticator apps and passkey prompts.
    issuer_name: str = "Exam board services"
    #: WebAuthn relying-party id (a registrable domain). Empty: the issuer's host.
    webauthn_rp_id: str = ""
    #: Origins allowed in WebAuthn ceremonies, comma-separated. Empty: the issuer's origin.
    webauthn_origins: str = ""


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    #: "json" (one object per line) or "text".
    format: str = "json"


@dataclass(frozen=True)
class PolicySettings:
    #: Folder with roles.toml, profiles.toml, security.toml. Empty: the policies shipped with the provider.
    dir: str = ""


@dataclass(frozen=True)
class BrandingSettings:
    """Whose pages these are: the names and logo in every page's header (GOV.UK's crown is never shown)."""

    #: The service's name, in every page's header and title.
    service_name: str = "Exam board services"
    #: Its Welsh name, on pages shown in Welsh. Empty: service_name's translation in the provider's
    #: Welsh catalogue (the default name has one), else service_name.
    service_name_cy: str = ""
    #: The exam board's name, at the left of the header (beside the logo, if any). Empty: the header
    #: shows service_name alone.
    board_name: str = ""
    board_name_cy: str = ""
    #: An image file (.svg, .png or .webp, at most 256 KB) shown in the header, 32 px high, before
    #: board_name (or in its place, with board_name as its text alternative). Empty: no logo.
    logo: str = ""


#: what a logo file may be, by its name's ending (served with that media type)
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".webp": "image/webp"}
LOGO_MAX_BYTES = 256 * 1024
#: a name shown in the header: one line of ordinary text
_BRANDING_NAME_MAX = 80


#: a DNS name: dot-separated labels of letters, digits, - and _ (at most 63 each, 253 in all)
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class OutboundSettings:
    """Requests the provider makes on a client's behalf (jwks_uri, back-channel logout): see outbound.py."""

    #: Host names and IP networks, comma-separated, that may be reached although they are (or resolve
    #: to) addresses otherwise refused: loopback, private, link-local, reserved. E.g. an internal
    #: service: "keys.corp.example, 10.20.0.0/16". https is still required. Local names (localhost,
    #: *.internal, no dot, ...) pass only when listed by name.
    allow_hosts: str = ""
    #: Development only: plain http to loopback (127.0.0.0/8, ::1) for jwks_uri and back-channel logout.
    allow_http_loopback: bool = False
    #: Deadline for a whole request: name lookup, connect, TLS, send and read.
    timeout_seconds: float = 5.0
    max_response_bytes: int = 64 * 1024
    #: Requests in flight at once per process; one more is refused at once rather than queued.
    max_concurrent: int = 16
    #: Seconds a failed URL fails again without being requested, so a dead endpoint is not hammered.
    failure_cache_seconds: int = 10

    def allow_list(self) -> tuple[frozenset[str], tuple]:
        """``allow_hosts`` parsed: (host names, IP networks). Raises ValueError naming a bad entry."""
        names, networks = set(), []
        for entry in (e.strip() for e in self.allow_hosts.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _HOST_NAME.match(name):
                raise ValueError(f"{entry!r} is neither a host name nor an IP network")
            names.add(name)
        return frozenset(names), tuple(networks)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    keys: KeysSettings = field(default_factory=KeysSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    mfa: MfaSettings = field(default_factory=MfaSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    policies: PolicySettings = field(default_factory=PolicySettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    branding: BrandingSettings = field(default_factory=BrandingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    housekeeping: HousekeepingSettings = field(default_factory=HousekeepingSettings)
    #: Where the settings came from, for error messages.
    source: str = "defaults"

    # ---- derived values: one place that resolves defaults against data_dir ----
    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'idp.sqlite3'}"

    @property
    def keys_dir(self) -> Path:
        return Path(self.keys.dir).expanduser().resolve()

    @property
    def mail_outbox_dir(self) -> Path:
        return Path(self.mail.outbox_dir).resolve() if self.mail.outbox_dir else self.data_dir / "outbox" / "mail"

    @property
    def sms_outbox_dir(self) -> Path:
        return Path(self.sms.outbox_dir).resolve() if self.sms.outbox_dir else self.data_dir / "outbox" / "sms"

    @property
    def logo_path(self) -> Path | None:
        return Path(self.branding.logo).expanduser().resolve() if self.branding.logo else None

    @property
    def issuer_is_local_http(self) -> bool:
        parts = urlsplit(self.server.issuer)
        return parts.scheme == "http" and parts.hostname in {"localhost", "127.0.0.1", "::1"}

    @property
    def max_jwt_lifetime(self) -> int:
        """Longest any signed token stays valid: how long a retired key must stay published."""
        return max(self.tokens.access_token_lifetime, self.tokens.id_token_lifetime)


#: the longest interval between the server's purges: a week
MAX_PURGE_EVERY_MINUTES = 7 * 24 * 60

#: Set (to "1") by ``idp serve`` and by gunicorn's hooks (idp.serving) for the worker processes they
#: start: an app built in such a process serves, and runs the service's scheduled housekeeping.
SERVING_ENV = "IDP_SERVING"

#: Short environment names documented in the README, on top of IDP_<SECTION>_<KEY>.
ENV_ALIASES = {
    "IDP_ISSUER": ("server", "issuer"),
    "IDP_DATA_DIR": ("server", "data_dir"),
    "IDP_SECRET_KEY": ("server", "secret_key"),
    "IDP_PEPPER": ("server", "pepper"),
    "IDP_DATABASE_URL": ("database", "url"),
    "IDP_REDIS_URL": ("store", "redis_url"),
    "IDP_KEYS_DIR": ("keys", "dir"),
}

_CHOICES = {
    ("mail", "backend"): {"outbox", "smtp"},
    ("mail", "smtp_security"): {"starttls", "tls", "none"},
    ("sms", "backend"): {"outbox", "twilio"},
    ("logging", "format"): {"json", "text"},
    ("logging", "level"): {"DEBUG", "INFO", "WARNING", "ERROR"},
    ("session", "same_site"): {"Lax", "Strict"},
    ("keys", "id_token_alg"): set(protocol.SIGNING_ALGORITHMS),
    ("keys", "access_token_alg"): set(protocol.SIGNING_ALGORITHMS),
}


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if f.name != "source"}


def _describe(tp) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(value, tp, where: str):
    """Check a TOML value (or convert an environment string) against the declared type."""
    if isinstance(value, str) and tp is not str and where.startswith("environment"):
        try:
            if tp is bool:
                if value.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                    raise ValueError
                return value.lower() in {"1", "true", "yes"}
            return tp(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {_describe(tp)}, got {value!r}") from None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not tp:
        raise ConfigError(f"{where}: expected {_describe(tp)}, got {type(value).__name__} {value!r}")
    return value


def _check_choice(section: str, key: str, value, where: str) -> None:
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(sorted(choices))}, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: expected a value of 0 or more, got {value!r}")


def _apply(raw: dict, source: str, env: typing.Mapping[str, str]) -> Settings:
    sections = _sections()
    values: dict[str, dict] = {name: {} for name in sections}
    #: where each value came from, so an error names the file key or the environment variable
    origins: dict[tuple[str, str], str] = {}

    for section, body in raw.items():
        if section not in sections:
            raise ConfigError(f"{source}: unknown section [{section}] (expected one of: {', '.join(sections)})")
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        hints = typing.get_type_hints(sections[section])
        for key, value in body.items():
            where = f"{source}: [{section}] {key}"
            if key not in hints:
                raise ConfigError(f"{where}: unknown key (expected one of: {', '.join(hints)})")
            values[section][key] = _coerce(value, hints[key], where)
            origins[(section, key)] = where

    overrides = {name: target for name, target in ENV_ALIASES.items()}
    for section, cls in sections.items():
        for key in typing.get_type_hints(cls):
            overrides.setdefault(f"IDP_{section.upper()}_{key.upper()}", (section, key))
    for name, value in env.items():
        if not name.startswith("IDP_") or name in {"IDP_CONFIG", SERVING_ENV} or name.startswith("IDP_TEST_"):
            continue
        if name not in overrides:
            raise ConfigError(f"environment {name}: unknown setting (see config.example.toml)")
        section, key = overrides[name]
        tp = typing.get_type_hints(sections[section])[key]
        values[section][key] = _coerce(value, tp, f"environment {name}")
        origins[(section, key)] = f"environment {name}"

    built = {}
    for section, cls in sections.items():
        for key, value in values[section].items():
            _check_choice(section, key, value, origins[(section, key)])
        built[section] = cls(**values[section])
    settings = Settings(**built, source=source)
    _check_issuer(settings, origins.get(("server", "issuer")))
    _check_outbound(settings.outbound, lambda key: origins.get(("outbound", key)) or f"{source}: [outbound] {key}")
    _check_branding(settings, lambda key: origins.get(("branding", key)) or f"{source}: [branding] {key}")
    _check_metrics(settings, lambda key: origins.get(("metrics", key)) or f"{source}: [metrics] {key}")
    _check_store(settings, lambda key: origins.get(("store", key)) or f"{source}: [store] {key}")
    purge_every = settings.housekeeping.purge_every_minutes
    if not 0 <= purge_every <= MAX_PURGE_EVERY_MINUTES:
        where = origins.get(("housekeeping", "purge_every_minutes")) or f"{source}: [housekeeping] purge_every_minutes"
        raise ConfigError(f"{where}: expected 0 (never) to {MAX_PURGE_EVERY_MINUTES} minutes (a week), "
                          f"got {purge_every!r}")
    keys = settings.keys
    if keys.rotate_after_days < 1:
        where = origins.get(("keys", "rotate_after_days")) or f"{source}: [keys] rotate_after_days"
        raise ConfigError(f"{where}: expected 1 or more days, got {keys.rotate_after_days!r}")
    if keys.publish_delay < keys.jwks_max_age:
        where = origins.get(("keys", "publish_delay")) or origins.get(("keys", "jwks_max_age"))
        raise ConfigError(f"{where}: publish_delay ({keys.publish_delay}) must be at least jwks_max_age "
                          f"({keys.jwks_max_age}), or relying parties may not have the new key yet")
    return settings


def _check_issuer(settings: Settings, where: str | None = None) -> None:
    issuer = settings.server.issuer
    if not issuer:
        return
    parts = urlsplit(issuer)
    where = where or f"{settings.source}: [server] issuer"
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError(f"{where}: expected an https:// URL, got {issuer!r}")
    if parts.query or parts.fragment or issuer.endswith("/"):
        raise ConfigError(f"{where}: expected no query, fragment or trailing slash, got {issuer!r}")
    if parts.scheme == "http" and not settings.issuer_is_local_http:
        raise ConfigError(f"{where}: plain http is allowed only for localhost, got {issuer!r}")


def _check_outbound(outbound: OutboundSettings, where) -> None:
    try:
        outbound.allow_list()
    except ValueError as exc:
        raise ConfigError(f"{where('allow_hosts')}: {exc}") from None
    if not outbound.timeout_seconds > 0:
        raise ConfigError(f"{where('timeout_seconds')}: expected more than 0, got {outbound.timeout_seconds!r}")
    for key in ("max_response_bytes", "max_concurrent"):
        if getattr(outbound, key) < 1:
            raise ConfigError(f"{where(key)}: expected 1 or more, got {getattr(outbound, key)!r}")


def listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) -> (host, port). Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


#: the Redis URL schemes the store (idp.store.redis_client) and the rate limiter both understand
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def _check_store(settings: Settings, where) -> None:
    url, prefix = settings.store.redis_url, settings.store.prefix
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(f"{where('redis_url')}: expected a URL starting {', '.join(s + '://' for s in REDIS_SCHEMES)}, "
                          f"got {mask_url(url)!r}")
    if parts.scheme in ("redis+sentinel", "redis+cluster"):
        for location in parts.netloc.rpartition("@")[2].split(","):
            host, _, port = location.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"{where('redis_url')}: expected host:port,host:port after {parts.scheme}://, "
                                  f"got {location!r}")
    if parts.scheme == "redis+sentinel" and not parts.path.strip("/"):
        raise ConfigError(f"{where('redis_url')}: name the Sentinel service after the hosts, "
                          f"e.g. redis+sentinel://host:26379,host:26380/mymaster")
    if settings.store.wait_for_replicas and parts.scheme == "redis+cluster":
        raise ConfigError(f"{where('wait_for_replicas')}: works with one primary (redis:// or "
                          f"redis+sentinel://), not a Cluster")
    if "{" in prefix or "}" in prefix:
        raise ConfigError(f"{where('prefix')}: expected no braces (a hash tag would put every key in one "
                          f"Cluster slot), got {prefix!r}")


def _check_metrics(settings: Settings, where) -> None:
    if settings.metrics.listen:
        try:
            listen_address(settings.metrics.listen)
        except ValueError as exc:
            raise ConfigError(f"{where('listen')}: {exc}") from None


def _check_branding(settings: Settings, where) -> None:
    branding = settings.branding
    for key in ("service_name", "service_name_cy", "board_name", "board_name_cy"):
        value = getattr(branding, key)
        if key == "service_name" and not value.strip():
            raise ConfigError(f"{where(key)}: expected a name, got an empty string")
        if len(value) > _BRANDING_NAME_MAX or inputs.has_control_characters(value):
            raise ConfigError(f"{where(key)}: expected one line of at most {_BRANDING_NAME_MAX} characters, "
                              f"got {value[:100]!r}")
    path = settings.logo_path
    if path is None:
        return
    if path.suffix.lower() not in LOGO_TYPES:
        raise ConfigError(f"{where('logo')}: expected a {', '.join(LOGO_TYPES)} file, got {branding.logo!r}")
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    if size is None:
        raise ConfigError(f"{where('logo')}: no such file: {str(path)!r}")
    if size > LOGO_MAX_BYTES:
        raise ConfigError(f"{where('logo')}: expected at most {LOGO_MAX_BYTES // 1024} KB, "
                          f"got {size // 1024} KB ({str(path)!r})")


def load(path: str | os.PathLike | None = None, env: typing.Mapping[str, str] | None = None,
         **overrides) -> Settings:
    """Load settings from an optional TOML file, then the environment.

    ``overrides`` (``section={"key": value}``) are applied last; tests and the CLI use them.
    """
    env = os.environ if env is None else env
    raw: dict = {}
    source = "defaults"
    if path is None and env.get("IDP_CONFIG"):
        path = env["IDP_CONFIG"]
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    for section, body in overrides.items():
        raw.setdefault(section, {}).update(body)
    return _apply(raw, source, env)


def with_issuer(settings: Settings, issuer: str) -> Settings:
    """The same settings with the issuer filled in (``idp serve`` derives it from host and port)."""
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, issuer=issuer))
    _check_issuer(settings)
    return settings


SERVED_ISSUER_FILE = "issuer"


def remember_served_issuer(settings: Settings) -> None:
    """``idp serve`` without a configured issuer derives one from its host and port; it is written
    to the data folder so that commands run beside it (``idp eo create`` sending an invite, say)
    link to the same address."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / SERVED_ISSUER_FILE).write_text(settings.server.issuer + "\n")


def effective_issuer(settings: Settings) -> str:
    """The configured issuer; else the one ``idp serve`` last derived in this data folder; else
    the quick start's http://localhost:5000."""
    if settings.server.issuer:
        return settings.server.issuer
    try:
        return (settings.data_dir / SERVED_ISSUER_FILE).read_text().strip() or "http://localhost:5000"
    except OSError:
        return "http://localhost:5000"


def mask_url(url: str) -> str:
    """A database or Redis URL fit for an error line: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


__all__ = [
    "ConfigError",
    "Settings",
    "effective_issuer",
    "load",
    "mask_url",
    "remember_served_issuer",
    "with_issuer",
]
