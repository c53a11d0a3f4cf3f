"""idp/config.py: TOML file -> environment -> frozen, typed settings; every error names the key.

The last part drives the real ``idp`` command in a subprocess: a bad setting, a bad policy or an
unreachable database must end in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from idp import config
from idp.config import ConfigError

IDP = str(Path(sys.executable).with_name("idp"))
POLICIES = Path(__file__).resolve().parents[2] / "policies"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def load_error(path: Path | None, env: dict | None = None, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        config.load(path, env=env or {}, **overrides)
    return str(info.value)


# ----------------------------------------------------------------- defaults
def test_defaults_without_file_or_env():
    settings = config.load(None, env={})
    assert settings == config.Settings()
    assert settings.source == "defaults"
    assert settings.server.issuer == ""
    assert settings.database.url == ""
    assert settings.store.redis_url == ""
    assert settings.store.prefix == "idp:"
    assert settings.keys.dir == "keys"
    assert (settings.keys.id_token_alg, settings.keys.access_token_alg) == ("RS256", "ES256")
    assert settings.tokens.authorization_code_lifetime == 60
    assert settings.logging.format == "json"


def test_derived_defaults_resolve_against_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = config.load(None, env={})
    assert settings.data_dir == tmp_path.resolve() / "var"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'idp.sqlite3'}"
    assert settings.keys_dir == tmp_path.resolve() / "keys"
    assert settings.mail_outbox_dir == tmp_path.resolve() / "var" / "outbox" / "mail"
    assert settings.sms_outbox_dir == tmp_path.resolve() / "var" / "outbox" / "sms"


def test_max_jwt_lifetime_is_longest_token():
    settings = config.load(None, env={}, tokens={"access_token_lifetime": 900, "id_token_lifetime": 300})
    assert settings.max_jwt_lifetime == 900
    settings = config.load(None, env={}, tokens={"access_token_lifetime": 60, "id_token_lifetime": 3600})
    assert settings.max_jwt_lifetime == 3600


def test_settings_are_frozen():
    settings = config.load(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.issuer = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.source = "x"  # type: ignore[misc]


# ----------------------------------------------------------------- file values
def test_file_values(tmp_path):
    path = write(tmp_path / "idp.toml", """
[server]
issuer = "https://id.board.example"
data_dir = "/srv/idp"
trusted_proxies = 1

[database]
url = "postgresql+psycopg://idp@db/idp"
pool_size = 20

[store]
redis_url = "redis://cache:6379/1"
prefix = "board:"

[tokens]
access_token_lifetime = 300

[mail]
smtp_timeout = 3
smtp_security = "tls"

[keys]
id_token_alg = "EdDSA"
""")
    settings = config.load(path, env={})
    assert settings.source == str(path)
    assert settings.server.issuer == "https://id.board.example"
    assert settings.server.trusted_proxies == 1
    assert settings.data_dir == Path("/srv/idp")
    assert settings.database_url == "postgresql+psycopg://idp@db/idp"
    assert settings.database.pool_size == 20
    assert settings.store.redis_url == "redis://cache:6379/1"
    assert settings.store.prefix == "board:"
    assert settings.tokens.access_token_lifetime == 300
    assert settings.tokens.id_token_lifetime == 600  # untouched keys keep their defaults
    assert settings.mail.smtp_timeout == 3.0 and isinstance(settings.mail.smtp_timeout, float)
    assert settings.mail.smtp_security == "tls"
    assert settings.keys.id_token_alg == "EdDSA"


def test_idp_config_env_names_the_file(tmp_path):
    path = write(tmp_path / "from-env.toml", '[tokens]\nid_token_lifetime = 120\n')
    settings = config.load(None, env={"IDP_CONFIG": str(path)})
    assert settings.source == str(path)
    assert settings.tokens.id_token_lifetime == 120


def test_explicit_path_wins_over_idp_config(tmp_path):
    a = write(tmp_path / "a.toml", '[tokens]\nid_token_lifetime = 111\n')
    b = write(tmp_path / "b.toml", '[tokens]\nid_token_lifetime = 222\n')
    assert config.load(a, env={"IDP_CONFIG": str(b)}).tokens.id_token_lifetime == 111


def test_keyword_overrides_apply_over_file(tmp_path):
    path = write(tmp_path / "idp.toml", '[tokens]\nid_token_lifetime = 120\nrefresh_token_lifetime = 99\n')
    settings = config.load(path, env={}, tokens={"id_token_lifetime": 30})
    assert settings.tokens.id_token_lifetime == 30
    assert settings.tokens.refresh_token_lifetime == 99


# ----------------------------------------------------------------- environment
def test_env_short_aliases(tmp_path):
    env = {
        "IDP_DATABASE_URL": "postgresql+psycopg://u:p@db/idp",
        "IDP_REDIS_URL": "redis://cache:6379/2",
        "IDP_ISSUER": "https://id.example.org",
        "IDP_KEYS_DIR": str(tmp_path / "k"),
        "IDP_DATA_DIR": str(tmp_path / "d"),
        "IDP_SECRET_KEY": "s3cret",
    }
    settings = config.load(None, env=env)
    assert settings.database.url == "postgresql+psycopg://u:p@db/idp"
    assert settings.store.redis_url == "redis://cache:6379/2"
    assert settings.server.issuer == "https://id.example.org"
    assert settings.keys_dir == tmp_path / "k"
    assert settings.data_dir == tmp_path / "d"
    assert settings.server.secret_key == "s3cret"


def test_env_generic_names_are_typed():
    settings = config.load(None, env={
        "IDP_TOKENS_ACCESS_TOKEN_LIFETIME": "900",
        "IDP_TOKENS_REFRESH_TOKEN_LIFETIME": "3600",
        "IDP_MAIL_SMTP_TIMEOUT": "2.5",
        "IDP_LOGGING_LEVEL": "DEBUG",
        "IDP_KEYS_PUBLISH_DELAY": "0",
        "IDP_KEYS_JWKS_MAX_AGE": "0",
        "IDP_SERVER_ISSUER": "https://generic.example",
    })
    assert settings.tokens.access_token_lifetime == 900
    assert isinstance(settings.tokens.access_token_lifetime, int)
    assert settings.tokens.refresh_token_lifetime == 3600
    assert settings.mail.smtp_timeout == 2.5
    assert settings.logging.level == "DEBUG"
    assert settings.keys.publish_delay == 0
    assert settings.server.issuer == "https://generic.example"


def test_env_overrides_file(tmp_path):
    path = write(tmp_path / "idp.toml", """
[server]
issuer = "https://file.example"
[database]
url = "sqlite:///file.sqlite3"
[store]
redis_url = "redis://file:6379/0"
[tokens]
access_token_lifetime = 100
id_token_lifetime = 200
""")
    settings = config.load(path, env={
        "IDP_ISSUER": "https://env.example",
        "IDP_DATABASE_URL": "postgresql+psycopg://env/idp",
        "IDP_REDIS_URL": "redis://env:6379/0",
        "IDP_TOKENS_ACCESS_TOKEN_LIFETIME": "700",
    })
    assert settings.server.issuer == "https://env.example"
    assert settings.database_url == "postgresql+psycopg://env/idp"
    assert settings.store.redis_url == "redis://env:6379/0"
    assert settings.tokens.access_token_lifetime == 700
    assert settings.tokens.id_token_lifetime == 200


def test_env_ignores_non_idp_and_test_variables():
    settings = config.load(None, env={"PATH": "/bin", "HOME": "/root", "IDP_CONFIG": "",
                                      "IDP_TEST_DATABASE_URL": "postgresql://x", "IDP_TEST_ANYTHING": "1",
                                      config.SERVING_ENV: "1"})
    assert settings == config.Settings()


def test_env_unknown_variable():
    message = load_error(None, env={"IDP_TOKENS_ACCES_TOKEN_LIFETIME": "1"})
    assert "IDP_TOKENS_ACCES_TOKEN_LIFETIME" in message
    assert "unknown" in message


def test_env_wrong_type_names_variable():
    message = load_error(None, env={"IDP_TOKENS_ACCESS_TOKEN_LIFETIME": "ten minutes"})
    assert "IDP_TOKENS_ACCESS_TOKEN_LIFETIME" in message
    assert "integer" in message
    assert "ten minutes" in message


@pytest.mark.parametrize("name, value", [
    ("IDP_LOGGING_FORMAT", "xml"),                # not one of the choices
    ("IDP_TOKENS_ACCESS_TOKEN_LIFETIME", "-5"),   # negative
    ("IDP_ISSUER", "http://idp.example.org"),     # plain http off localhost
    ("IDP_HOUSEKEEPING_PURGE_EVERY_MINUTES", "99999"),  # more than a week
])
def test_env_bad_value_names_the_variable_not_the_file(tmp_path, name, value):
    """A bad value that came from the environment must be blamed on the variable: an operator
    told "idp.toml: [logging] format" searches the file and finds nothing wrong there."""
    path = write(tmp_path / "idp.toml", "[tokens]\nid_token_lifetime = 60\n")
    message = load_error(path, env={name: value})
    assert name in message, message


# ----------------------------------------------------------------- file errors: file + key in every message
@pytest.mark.parametrize("body, key, expect", [
    ('[serverr]\nissuer = "https://x.example"\n', "serverr", "unknown section"),
    ('[server]\nisuer = "https://x.example"\n', "isuer", "unknown key"),
    ('[tokens]\naccess_token_lifetime = "600"\n', "access_token_lifetime", "integer"),
    ('[tokens]\naccess_token_lifetime = 1.5\n', "access_token_lifetime", "integer"),
    ('[tokens]\naccess_token_lifetime = true\n', "access_token_lifetime", "integer"),
    ('[server]\nissuer = 5\n', "issuer", "string"),
    ('[mail]\nsmtp_timeout = "ten"\n', "smtp_timeout", "number"),
    ('[logging]\nformat = "xml"\n', "format", "json, text"),
    ('[keys]\nid_token_alg = "HS256"\n', "id_token_alg", "HS256"),
    ('[mail]\nbackend = "sendmail"\n', "backend", "outbox, smtp"),
    ('[session]\nsame_site = "None"\n', "same_site", "Lax"),
    ('[tokens]\naccess_token_lifetime = -1\n', "access_token_lifetime", "0 or more"),
    ('[keys]\npublish_delay = -300\n', "publish_delay", "0 or more"),
    ('[server]\nissuer = "http://idp.example.org"\n', "issuer", "localhost"),
    ('[server]\nissuer = "https://idp.example.org/"\n', "issuer", "trailing slash"),
    ('[server]\nissuer = "https://idp.example.org?x=1"\n', "issuer", "query"),
    ('[server]\nissuer = "ftp://idp.example.org"\n', "issuer", "https://"),
    ('[server]\nissuer = "http://localhost.evil.example"\n', "issuer", "localhost"),
    ('server = "https://x.example"\n', "server", "table"),
    ('[housekeeping]\npurge_every_minutes = 20000\n', "purge_every_minutes", "a week"),
    ('[housekeeping]\npurge_every_minutes = -1\n', "purge_every_minutes", "0 or more"),
])
def test_file_errors_name_file_and_key(tmp_path, body, key, expect):
    path = write(tmp_path / "bad.toml", body)
    message = load_error(path)
    assert str(path) in message
    assert key in message
    assert expect in message
    assert "\n" not in message


def test_invalid_toml(tmp_path):
    path = write(tmp_path / "broken.toml", '[server\nissuer = "https://x.example"\n')
    message = load_error(path)
    assert str(path) in message and "not valid TOML" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    message = load_error(path)
    assert str(path) in message and "not found" in message


def test_missing_file_from_idp_config(tmp_path):
    path = tmp_path / "gone.toml"
    message = load_error(None, env={"IDP_CONFIG": str(path)})
    assert str(path) in message and "not found" in message


@pytest.mark.parametrize("issuer", [
    "https://id.example", "https://id.example:8443/idp", "http://localhost", "http://localhost:5000",
    "http://127.0.0.1:8000", "http://[::1]:5000",
])
def test_good_issuers(issuer):
    assert config.load(None, env={"IDP_ISSUER": issuer}).server.issuer == issuer


def test_with_issuer_checks_the_issuer():
    settings = config.load(None, env={})
    assert config.with_issuer(settings, "http://localhost:5001").server.issuer == "http://localhost:5001"
    with pytest.raises(ConfigError, match="issuer"):
        config.with_issuer(settings, "http://192.0.2.10:5000")
    with pytest.raises(ConfigError, match="trailing slash"):
        config.with_issuer(settings, "https://id.example/")


@pytest.mark.parametrize("issuer, local", [
    ("http://localhost:5000", True), ("http://127.0.0.1", True), ("https://localhost", False),
    ("https://id.example", False),
])
def test_issuer_is_local_http(issuer, local):
    assert config.load(None, env={"IDP_ISSUER": issuer}).issuer_is_local_http is local


# ----------------------------------------------------------------- mask_url
@pytest.mark.parametrize("url, masked", [
    ("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x", "postgresql+psycopg://postgres:***@127.0.0.1:1/x"),
    ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://idp:p%40ss%3Aw0rd@db.example:5432/idp?sslmode=require",
     "postgresql://idp:***@db.example:5432/idp?sslmode=require"),
    ("postgresql://same:same@db/idp", "postgresql://same:***@db/idp"),
    ("postgresql://nopassword@db/idp", "postgresql://nopassword@db/idp"),
    ("sqlite:////srv/idp/idp.sqlite3", "sqlite:////srv/idp/idp.sqlite3"),
    ("", ""),
])
def test_mask_url(url, masked):
    assert config.mask_url(url) == masked


def test_mask_url_hides_password_everywhere():
    for password in ("hunter2", "x:y", "abc%2Fdef"):
        url = f"postgresql://user:{password}@h/db"
        assert password not in config.mask_url(url)


# ----------------------------------------------------------------- the idp command
def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(extra)
    return env


def run_idp(cwd: Path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([IDP, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=60)


def one_line(stderr: str) -> str:
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_cli_unknown_key_exits_2_with_one_line(tmp_path):
    write(tmp_path / "bad.toml", '[server]\nissuer = "https://id.example"\ncolour = "red"\n')
    result = run_idp(tmp_path, "setup", "--config", "bad.toml")
    assert result.returncode == 2, result
    line = one_line(result.stderr)
    assert "bad.toml" in line and "colour" in line and "unknown key" in line
    assert result.stdout == ""
    assert not (tmp_path / "keys").exists()  # stopped before touching anything


def test_cli_bad_env_setting_exits_2(tmp_path):
    result = run_idp(tmp_path, "keys", "list", IDP_TOKENS_ACCESS_TOKEN_LIFETIME="soon")
    assert result.returncode == 2, result
    line = one_line(result.stderr)
    assert "IDP_TOKENS_ACCESS_TOKEN_LIFETIME" in line


def test_cli_unknown_option_exits_2_with_usage(tmp_path):
    result = run_idp(tmp_path, "setup", "--bogus")
    assert result.returncode == 2
    assert "Usage: idp setup" in result.stderr
    assert "--bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_policy_exits_2_with_one_line(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    security = policies / "security.toml"
    text = security.read_text()
    assert text.count("lock_seconds = 3600") == 1
    security.write_text(text.replace("lock_seconds = 3600", 'lock_seconds = "an hour"'))
    result = run_idp(tmp_path, "setup", IDP_POLICIES_DIR=str(policies))
    assert result.returncode == 2, result
    line = one_line(result.stderr)
    assert str(security) in line and "lockout.lock_seconds" in line
    assert not (tmp_path / "keys").exists()


def test_cli_database_unreachable_masks_password(tmp_path):
    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x"
    result = run_idp(tmp_path, "db", "upgrade", IDP_DATABASE_URL=url)
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "postgresql+psycopg://postgres:***@127.0.0.1:1/x" in line
    assert "hunter2" not in result.stderr + result.stdout


def test_publish_delay_shorter_than_jwks_cache_is_refused():
    with pytest.raises(config.ConfigError) as info:
        config.load(None, env={"IDP_KEYS_PUBLISH_DELAY": "10"})
    assert "environment IDP_KEYS_PUBLISH_DELAY" in str(info.value)
    assert "jwks_max_age" in str(info.value)


def test_the_default_service_name_is_the_one_the_catalogue_translates():
    from idp import branding

    assert config.load(None, env={}).branding.service_name == branding.DEFAULT_SERVICE_NAME
