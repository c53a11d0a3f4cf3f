"""Lockout is shared by every server process and survives a restart (DESIGN.md §1 Lockout): two real
gunicorn servers on one PostgreSQL database and one Redis prefix, the failures spread over both.
A browser's cookies go to both (cookies ignore the port), as behind a load balancer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import PASSWORD, make_account

ADA = "ada@centre.example"
NEW = "Tulip-harbour-93"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SUMMARY = re.compile(r'<div class="govuk-error-summary".*?</ul>', re.S)


class Server:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port, self.base, self.log = port, f"http://127.0.0.1:{port}", log
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env["IDP_CONFIG"] = str(config)
        self.log_file = log.open("a")
        self.proc = subprocess.Popen(
            [GUNICORN, "-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "idp:create_app()"],
            cwd=config.parent, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_up(self, deadline: float) -> None:
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(self.base + "/healthz", timeout=1, proxies={"http": None}).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn on {self.port} did not come up (exit {self.proc.poll()}):\n"
                    + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what this test started
                self.proc.wait(timeout=5)
        self.log_file.close()


class Browser:
    """requests with the form steps; the same cookie jar for every server."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.trust_env = False

    def post_form(self, server: Server, path: str, data: dict, csrf_from: str | None = None):
        page = self.http.get(server.base + (csrf_from or path), allow_redirects=False, timeout=10)
        assert page.status_code == 200, (server.port, path, page.status_code, page.headers.get("Location"))
        token = CSRF.search(page.text).group(1)
        return self.http.post(server.base + path, data={**data, "csrf_token": token}, allow_redirects=False,
                              timeout=10)

    def begin(self, server: Server, email: str) -> None:
        step = self.post_form(server, "/signin", {"email": email})
        assert step.status_code == 303, step.text

    def password(self, server: Server, password: str):
        return self.post_form(server, "/signin/password", {"password": password})


def summary(response) -> str:
    found = SUMMARY.search(response.text)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))) if found else ""


def write_config(path: Path, settings, smtp) -> None:
    q = json.dumps  # a JSON string is a valid TOML basic string
    path.write_text("\n".join([
        "[server]", f"issuer = {q('http://localhost')}", f"data_dir = {q(str(path.parent / 'var'))}",
        f"secret_key = {q('shared-secret-key')}", f"pepper = {q('shared-pepper')}",
        "[database]", f"url = {q(settings.database.url)}",
        "[store]", f"redis_url = {q(settings.store.redis_url)}", f"prefix = {q(settings.store.prefix)}",
        "[keys]", f"dir = {q(str(settings.keys_dir))}",
        "[policies]", f"dir = {q(settings.policies.dir)}",
        "[mail]", 'backend = "smtp"', 'smtp_host = "127.0.0.1"', f"smtp_port = {smtp.port}",
        'smtp_security = "none"', 'from_address = "no-reply@board.example"',
        "[logging]", 'level = "WARNING"', 'format = "text"', ""]))


@pytest.mark.shared_store  # the embedded store lives in one process
def test_lockout_shared_by_two_processes_survives_restart_and_reset_unlocks(backend, make_settings, smtp,
                                                                           tmp_path, kit):
    settings = make_settings(server={"pepper": "shared-pepper"})
    app = kit.build_app(settings)
    with app.app_context():
        make_account(ADA)
    sub = kit.account_row(app, ADA)["sub"]

    config = tmp_path / "idp.toml"
    write_config(config, settings, smtp)
    one = Server(config, kit.free_port(), tmp_path / "one.log")
    two = Server(config, kit.free_port(), tmp_path / "two.log")
    servers = [one, two]
    try:
        deadline = time.monotonic() + 60
        one.wait_up(deadline)
        two.wait_up(deadline)

        # three wrong passwords, spread over both processes
        person = Browser()
        person.begin(one, ADA)
        first = person.password(one, "wrong-guess-1")
        second = person.password(two, "wrong-guess-2")
        assert kit.BAD_CREDENTIALS in summary(first) and kit.BAD_CREDENTIALS in summary(second)
        third = person.password(one, "wrong-guess-3")
        assert kit.LOCKED in summary(third), summary(third)
        smtp.take(ADA, kit.LOCKED_SUBJECT, timeout=10)  # sent after the response

        # locked on both: the right password is refused everywhere
        for server in (two, one):
            fresh = Browser()
            fresh.begin(server, ADA)
            assert kit.LOCKED in summary(fresh.password(server, PASSWORD)), server.port
        assert len(kit.audit_events(app, "account.locked", subject=sub)) == 1

        # a restarted process still knows
        one.stop()
        one = Server(config, one.port, tmp_path / "one.log")
        servers[0] = one
        one.wait_up(time.monotonic() + 60)
        again = Browser()
        again.begin(one, ADA)
        assert kit.LOCKED in summary(again.password(one, PASSWORD))

        # a reset (asked on one process, finished on the other) unlocks at once
        asked = again.post_form(two, "/forgot", {"email": ADA})
        assert asked.status_code == 303
        code = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT, timeout=10))
        done = again.post_form(one, "/forgot/code", {"code": code, "password": NEW})
        assert done.status_code == 303, summary(done)
        for server in (two, one):
            fresh = Browser()
            fresh.begin(server, ADA)
            step = fresh.password(server, NEW)
            assert step.status_code == 303 and step.headers["Location"].endswith("/signin/mfa"), summary(step)
        smtp.take(ADA, kit.CHANGED_SUBJECT, timeout=10)
    finally:
        for server in servers:
            server.stop()
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
    for name in ("one.log", "two.log"):
        assert "Traceback" not in (tmp_path / name).read_text(), (tmp_path / name).read_text()[-3000:]


def _servers(settings, smtp, tmp_path, kit):
    config = tmp_path / "idp.toml"
    write_config(config, settings, smtp)
    servers = [Server(config, kit.free_port(), tmp_path / f"{n}.log") for n in ("one", "two")]
    deadline = time.monotonic() + 60
    for server in servers:
        server.wait_up(deadline)
    return servers


def _stop(servers, app, tmp_path):
    for server in servers:
        server.stop()
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()
    for name in ("one.log", "two.log"):
        assert "Traceback" not in (tmp_path / name).read_text(), (tmp_path / name).read_text()[-3000:]


def _totp_answer(person: Browser, server: Server, code: str):
    page = person.http.get(server.base + "/signin/mfa", allow_redirects=False, timeout=10)
    if page.status_code != 200:
        return page
    method_id = re.search(r'name="method_id" value="([^"]+)"', page.text).group(1)
    return person.http.post(server.base + "/signin/mfa", allow_redirects=False, timeout=10, data={
        "csrf_token": CSRF.search(page.text).group(1), "kind": "totp", "method_id": method_id, "code": code})


@pytest.mark.shared_store
def test_second_factor_budget_holds_across_two_processes_and_a_replayed_cookie(make_settings, smtp,
                                                                               tmp_path, kit):
    import pyotp

    from tests.support import add_totp

    settings = make_settings(server={"pepper": "shared-pepper"})
    app = kit.build_app(settings)
    with app.app_context():
        from idp.extensions import db

        secret = add_totp(make_account(ADA, mfa=False))
        db.session.commit()
    totp = pyotp.TOTP(secret)
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    servers = _servers(settings, smtp, tmp_path, kit)
    one, two = servers
    try:
        person = Browser()
        person.begin(one, ADA)
        assert person.password(two, PASSWORD).headers["Location"].endswith("/signin/mfa")
        saved = person.http.cookies.copy()
        answers = [_totp_answer(person, servers[n % 2], wrong) for n in range(5)]
        assert [a.status_code for a in answers] == [400, 400, 400, 400, 302]
        smtp.take(ADA, kit.LOCKED_SUBJECT, timeout=10)

        replayer = Browser()
        replayer.http.cookies.update(saved)
        for server in servers:  # the saved cookie, the right code, either process: nothing
            replay = _totp_answer(replayer, server, totp.now())
            assert replay.status_code == 302 and replay.headers["Location"].endswith("/signin")
            assert "idp_session" not in replayer.http.cookies
        for server in servers:
            fresh = Browser()
            fresh.begin(server, ADA)
            assert kit.LOCKED in summary(fresh.password(server, PASSWORD))
    finally:
        _stop(servers, app, tmp_path)


@pytest.mark.shared_store
def test_parallel_password_guesses_over_two_processes_are_evaluated_at_most_three_times(make_settings, smtp,
                                                                                      tmp_path, kit):
    """Ten attempts at once, spread over two processes: only the failure budget's three are looked at
    (audited as bad_credentials); the rest are refused as locked without checking the password.
    Then nine wrong and the right one at once: the right one gets through only if it came before
    the lock, and never more than three wrong ones are evaluated before the lock."""
    import concurrent.futures
    import threading

    settings = make_settings(server={"pepper": "shared-pepper"})
    app = kit.build_app(settings)
    with app.app_context():
        make_account(ADA)
        make_account("bea@centre.example")
    servers = _servers(settings, smtp, tmp_path, kit)

    def burst(email, passwords):
        people = []
        for n, _ in enumerate(passwords):
            person = Browser()
            person.begin(servers[n % 2], email)
            page = person.http.get(servers[n % 2].base + "/signin/password", timeout=10)
            people.append((person, servers[n % 2], CSRF.search(page.text).group(1)))
        start = threading.Barrier(len(people))

        def attempt(args):
            (person, server, token), password = args
            start.wait()
            return person.http.post(server.base + "/signin/password", data={"password": password,
                                    "csrf_token": token}, allow_redirects=False, timeout=30)

        with concurrent.futures.ThreadPoolExecutor(len(people)) as pool:
            return list(pool.map(attempt, zip(people, passwords, strict=True)))

    def evaluated(email):
        sub = kit.account_row(app, email)["sub"]
        return [e.details.get("reason") for e in kit.audit_events(app, "signin.password", subject=sub)]

    try:
        results = burst(ADA, [f"wrong-guess-{n}" for n in range(10)])
        reasons = evaluated(ADA)
        assert sorted(reasons) == ["bad_credentials"] * 3 + ["locked"] * 7, reasons
        assert sum(kit.LOCKED in summary(r) for r in results) == 8  # the third wrong one locks too
        assert kit.lock_state(app, ADA)["locked_until"] is not None  # (a further try meets the rate limit)

        results = burst("bea@centre.example", [f"wrong-guess-{n}" for n in range(9)] + [PASSWORD])
        right = results[-1]
        reasons = evaluated("bea@centre.example")
        if right.status_code == 303:  # it took one of the first slots: it resets the count
            assert reasons.count(None) == 1 and reasons.count("bad_credentials") <= 5, reasons
        else:
            assert kit.LOCKED in summary(right)
            assert sorted(reasons) == ["bad_credentials"] * 3 + ["locked"] * 7, reasons
    finally:
        _stop(servers, app, tmp_path)
