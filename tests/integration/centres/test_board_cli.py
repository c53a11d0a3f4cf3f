"""Board staff's command line, as an operator runs it: `idp centre|eo|account ...` in a folder,
configured by environment variables, after `idp setup`. Each command prints JSON on success; a
refusal is one readable line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL

IDP = str(Path(sys.executable).with_name("idp"))


class Cli:
    """Runs `idp` in-process (click's CliRunner, the same entry point and environment) for speed;
    ``in_subprocess=True`` runs the installed console script, as an operator's shell would."""

    def __init__(self, cwd: Path, env: dict, in_subprocess: bool = False) -> None:
        self.cwd, self.env, self.in_subprocess = cwd, env, in_subprocess

    def run(self, *args: str) -> subprocess.CompletedProcess:
        if self.in_subprocess:
            return subprocess.run([IDP, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                                  timeout=120)
        from click.testing import CliRunner

        from idp.cli import main

        overlay = {k: v for k, v in self.env.items() if k.startswith("IDP_")}
        overlay.update({k: None for k in os.environ if k.startswith("IDP_") and k not in overlay
                        and not k.startswith("IDP_TEST_")})
        result = CliRunner().invoke(main, list(args), env=overlay)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str):
        result = self.run(*args)
        assert result.returncode == 0, f"idp {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        return json.loads(result.stdout)

    def refused(self, *args: str) -> str:
        """Exit 1, nothing on stdout, one line on stderr (no traceback): the line."""
        result = self.run(*args)
        assert result.returncode == 1, (args, result.returncode, result.stdout, result.stderr)
        assert result.stdout == "", result.stdout
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("idp: error: ") and len(lines[0]) > len("idp: error: ") + 5, lines[0]
        return lines[0].removeprefix("idp: error: ")

    @property
    def outbox(self) -> Path:
        return self.cwd / "var" / "outbox" / "mail"

    def invite_mail(self, address: str) -> str:
        """The temporary password in the (one) invite email to ``address``."""
        found = []
        for path in sorted(self.outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address:
                found.append(message.get_body(preferencelist=("plain",)).get_content())
        assert len(found) == 1, f"{len(found)} emails to {address} in {self.outbox}"
        match = re.search(r"Temporary password: (\S+)", found[0])
        assert match, found[0]
        return match.group(1)


@pytest.fixture
def cli(tmp_path, backend, make_settings, pg_database):
    """A fresh folder; on pg-redis the same per-worker PostgreSQL database the other tests use
    (make_settings empties it afterwards) and a Redis key prefix of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    site = tmp_path / "site"
    site.mkdir()
    env.update(IDP_DATA_DIR=str(site / "var"), IDP_KEYS_DIR=str(site / "keys"), IDP_ISSUER="http://localhost",
               IDP_LOGGING_LEVEL="WARNING")
    if backend == "pg-redis":
        env.update(IDP_DATABASE_URL=pg_database, IDP_REDIS_URL=REDIS_URL,
                   IDP_STORE_PREFIX=f"t:{uuid.uuid4().hex[:12]}:")
    runner = Cli(site, env)
    runner.ok("setup")
    return runner


EO_ARGS = ("--given-name", "Eve", "--family-name", "Officer")


def test_centres_eos_and_accounts(cli):
    created = cli.ok("centre", "create", "--number", "12345", "--name", "  Ysgol Gyfun  ")
    assert created == {"number": "12345", "name": "Ysgol Gyfun", "suspended": False}
    cli.ok("centre", "create", "--number", "01234", "--name", "Leading Zero College")
    assert cli.ok("centre", "list") == [
        {"number": "01234", "name": "Leading Zero College", "suspended": False},
        {"number": "12345", "name": "Ysgol Gyfun", "suspended": False},
    ]

    eo = cli.ok("eo", "create", "--centre", "12345", "--email", "eo@ysgol.example", *EO_ARGS,
                "--language", "cy", "--phone", "+447700900123")
    assert set(eo) >= {"sub", "email", "status"}
    assert eo["email"] == "eo@ysgol.example" and eo["status"] == "invited" and eo["sub"]
    assert eo["sub"] != eo["email"] and "@" not in eo["sub"]
    assert len(list(cli.outbox.glob("*.eml"))) == 1
    message = email.message_from_bytes(next(cli.outbox.glob("*.eml")).read_bytes(), policy=email.policy.default)
    assert message["To"] == "eo@ysgol.example"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert re.search(r"Cyfrinair dros dro\S*:\s*\S{10,}|Temporary password: \S{10,}", text), text

    second = cli.refused("eo", "create", "--centre", "12345", "--email", "eo2@ysgol.example", *EO_ARGS)
    assert "one" in second.lower() and "Exams Officer" in second, second
    assert len(list(cli.outbox.glob("*.eml"))) == 1  # no mail for a refused invite

    shown = cli.ok("account", "show", "  EO@Ysgol.example ")
    assert shown["sub"] == eo["sub"] and shown["role"] == "eo" and shown["centre"] == "12345"
    assert shown["language"] == "cy" and shown["phone"] == "+447700900123"
    assert shown["profiles"] == sorted(shown["profiles"]) and "users.manage" in shown["profiles"]

    replaced = cli.ok("eo", "replace", "--centre", "12345", "--email", "new.eo@ysgol.example",
                      "--given-name", "Nia", "--family-name", "Jones")
    assert replaced["email"] == "new.eo@ysgol.example" and replaced["status"] == "invited"
    assert replaced["sub"] != eo["sub"]
    assert cli.invite_mail("new.eo@ysgol.example")
    gone = cli.refused("account", "show", "eo@ysgol.example")
    assert "no account" in gone.lower()

    listed = cli.ok("account", "list")
    assert [a["email"] for a in listed] == ["new.eo@ysgol.example"]
    assert [a["email"] for a in cli.ok("account", "list", "--search", "NIA")] == ["new.eo@ysgol.example"]

    suspended = cli.ok("centre", "suspend", "12345")
    assert suspended == {"number": "12345", "name": "Ysgol Gyfun", "suspended": True}
    assert cli.ok("centre", "suspend", "12345", "--reinstate")["suspended"] is False


def test_refusals_are_one_readable_line(cli):
    """Bad centre numbers, unknown centres, bad fields, duplicates: exit 1, one line, no traceback."""
    cli.ok("centre", "create", "--number", "12345", "--name", "Test")
    cli.in_subprocess = True  # once as an operator's shell sees it: exit status, stderr, no traceback
    assert "5 digits" in cli.refused("centre", "create", "--number", "1234", "--name", "Bad")
    cli.in_subprocess = False
    assert "5 digits" in cli.refused("eo", "create", "--centre", "12a45", "--email", "e@x.example", *EO_ARGS)
    assert "centre" in cli.refused("eo", "create", "--centre", "", "--email", "e@x.example", *EO_ARGS).lower()
    assert "5 digits" in cli.refused("centre", "suspend", "123456")
    assert "no centre 99999" in cli.refused("eo", "create", "--centre", "99999", "--email", "e@x.example",
                                            *EO_ARGS).lower()
    assert "already exists" in cli.refused("centre", "create", "--number", "12345", "--name", "Again")
    assert "email" in cli.refused("eo", "create", "--centre", "12345", "--email", "not-an-email", *EO_ARGS).lower()
    assert "no account" in cli.refused("account", "show", "nobody@x.example").lower()
    assert cli.ok("account", "list") == []
    assert not cli.outbox.exists() or not list(cli.outbox.glob("*.eml"))


def test_invites_sent_from_the_command_line_link_to_the_issuer(cli):
    """The configured issuer, or without one the address `idp serve` is serving on (recorded in
    the data folder): never a made-up localhost:5000."""
    from idp import config

    cli.ok("centre", "create", "--number", "12345", "--name", "Ysgol")
    cli.ok("eo", "create", "--centre", "12345", "--email", "eo@ysgol.example", *EO_ARGS)
    assert "http://localhost/signin" in _only_mail_text(cli, "eo@ysgol.example")

    del cli.env["IDP_ISSUER"]  # as after `idp serve --port 8123` with no issuer configured
    served = config.load(None, env={"IDP_DATA_DIR": cli.env["IDP_DATA_DIR"]})
    config.remember_served_issuer(config.with_issuer(served, "http://localhost:8123"))
    cli.ok("board", "create", "--email", "board@board.example", "--given-name", "Bo", "--family-name", "Ard")
    text = _only_mail_text(cli, "board@board.example")
    assert "http://localhost:8123/signin" in text and "localhost:5000" not in text


def _only_mail_text(cli, address: str) -> str:
    texts = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in cli.outbox.glob("*.eml")]
    found = [m.get_body(preferencelist=("plain",)).get_content() for m in texts if m["To"] == address]
    assert len(found) == 1, found
    return found[0]


def test_the_board_consoles_services_on_the_command_line(cli):
    """Rename a centre; replace its Exams Officer keeping the old one as an admin; act on someone
    with the reason board staff must give; rotate a client secret with a grace period; list and
    revoke initial access tokens; invite a helpdesk account."""
    cli.ok("centre", "create", "--number", "12345", "--name", "Ysgol")
    assert cli.ok("centre", "rename", "12345", "--name", " Ysgol Newydd ")["name"] == "Ysgol Newydd"
    assert "centre name" in cli.refused("centre", "rename", "12345", "--name", " ")

    cli.ok("eo", "create", "--centre", "12345", "--email", "eo@ysgol.example", *EO_ARGS)
    assert "kept as one of" in cli.refused("eo", "replace", "--centre", "12345", "--email", "n@ysgol.example",
                                           *EO_ARGS, "--keep-as", "board")
    cli.ok("eo", "replace", "--centre", "12345", "--email", "new.eo@ysgol.example", *EO_ARGS, "--keep-as", "admin")
    kept = cli.ok("account", "show", "eo@ysgol.example")
    assert kept["role"] == "admin" and kept["version"] == 2

    assert "reason" in cli.refused("account", "unlock", "eo@ysgol.example")
    assert "reason" in cli.refused("account", "resend-invite", "new.eo@ysgol.example", "--reason", "  ")
    assert cli.ok("account", "unlock", "eo@ysgol.example", "--reason", "Ticket 3")["email"] == "eo@ysgol.example"
    cli.ok("account", "resend-invite", "new.eo@ysgol.example", "--reason", "Ticket 4")

    created = cli.ok("client", "create", "--name", "Batch", "--grant-type", "client_credentials")
    rotated = cli.ok("client", "rotate-secret", created["client_id"], "--grace", "600")
    assert rotated["old_secret_works_for_seconds"] == 600 and rotated["client_secret"] != created["client_secret"]
    assert cli.run("client", "rotate-secret", created["client_id"], "--grace", "-1").returncode == 2

    assert cli.ok("client", "initial-tokens") == []
    cli.ok("client", "initial-token", "--uses", "3")
    token, = cli.ok("client", "initial-tokens")
    assert token["uses_left"] == 3 and token["created_by"] == "cli" and "initial_access_token" not in token
    assert cli.ok("client", "revoke-initial-token", token["id"]) == {"id": token["id"], "revoked": True}
    assert "no such initial access token" in cli.refused("client", "revoke-initial-token", token["id"])
    assert cli.ok("client", "initial-tokens") == []

    helpdesk = cli.ok("board", "create", "--email", "help@board.example", "--given-name", "Hal", "--family-name",
                      "Desk", "--role", "helpdesk")
    assert helpdesk["role"] == "helpdesk"
    assert "belong to a centre" in cli.refused("board", "create", "--email", "x@board.example", "--given-name", "X",
                                               "--family-name", "Y", "--role", "eo")


def test_a_store_that_does_not_answer_is_one_readable_line(cli, backend):
    """Disabling someone writes their revocation markers to the store as it commits: with the
    store gone the command fails whole (exit 1, one line, no traceback) and the account is as it was."""
    if backend != "pg-redis":
        pytest.skip("the embedded store is in the process: it cannot be unreachable")
    cli.ok("centre", "create", "--number", "12345", "--name", "Ysgol")
    cli.ok("eo", "create", "--centre", "12345", "--email", "eo@ysgol.example", *EO_ARGS)
    # (port 9: nothing listens; the app's own warning as it starts is a log line, not asserted here)
    gone = Cli(cli.cwd, {**cli.env, "IDP_REDIS_URL": "redis://127.0.0.1:9/0", "IDP_LOGGING_LEVEL": "ERROR"})
    line = gone.refused("account", "disable", "eo@ysgol.example", "--reason", "Ticket 7")
    assert "cannot reach the store" in line, line
    assert cli.ok("account", "show", "eo@ysgol.example")["status"] == "invited"
