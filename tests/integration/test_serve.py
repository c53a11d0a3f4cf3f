"""The zero-configuration quick start: `idp serve` in an empty folder, then `idp keys rotate`
from the same folder is picked up by the running server without a restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

IDP = str(Path(sys.executable).with_name("idp"))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}


def get(url: str) -> tuple[int, dict, dict]:
    try:
        with OPENER.open(url, timeout=5) as response:
            return response.status, response.headers, json.loads(response.read())  # (names case-insensitive)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"null")


class Server:
    def __init__(self, cwd: Path, port: int, stderr_path: Path, *extra: str) -> None:
        self.lines: list[str] = []
        self.stderr_file = stderr_path.open("w")
        self.proc = subprocess.Popen(
            [IDP, "serve", "--host", "127.0.0.1", "--port", str(port), *extra], cwd=cwd, env=clean_env(),
            stdout=subprocess.PIPE, stderr=self.stderr_file, text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
                self.proc.wait(timeout=5)
        self.stderr_file.close()
        return self.proc.returncode


@pytest.fixture
def server(tmp_path):
    workdir = tmp_path / "site"
    workdir.mkdir()
    port = free_port()
    srv = Server(workdir, port, tmp_path / "serve.stderr")
    srv.workdir, srv.port, srv.base = workdir, port, f"http://127.0.0.1:{port}"
    yield srv
    srv.stop()


def wait_until_up(srv: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            break
        try:
            if get(srv.base + "/healthz")[0] == 200:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    stderr = Path(srv.stderr_file.name).read_text()[-3000:]
    pytest.fail(f"idp serve did not come up (exit {srv.proc.poll()}):\n{srv.lines}\n{stderr}")


def test_serve_from_empty_folder_and_rotate_without_restart(server):
    assert list(server.workdir.iterdir()) == []
    wait_until_up(server, time.monotonic() + 30)

    # it told the operator where it is
    issuer = f"http://localhost:{server.port}"
    assert any(issuer in line for line in server.lines), server.lines
    assert any(f"{issuer}/.well-known/openid-configuration" in line for line in server.lines)

    status, headers, body = get(server.base + "/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert headers["Content-Type"].startswith("application/json")
    status, headers, body = get(server.base + "/readyz")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["checks"] == {"database": "ok", "store": "ok"}

    # it keeps house by itself, with nobody running `idp db purge`: its worker purged as it started
    deadline = time.monotonic() + 10
    while "housekeeping: deleted" not in Path(server.stderr_file.name).read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "housekeeping: deleted" in Path(server.stderr_file.name).read_text()

    # the embedded defaults, created in the working folder
    assert (server.workdir / "var" / "idp.sqlite3").is_file()
    keyring = server.workdir / "keys" / "keyring.json"
    assert keyring.is_file()
    on_disk = {k["kid"] for k in json.loads(keyring.read_text())["keys"]}

    status, headers, doc = get(server.base + "/jwks.json")
    assert status == 200
    assert len(doc["keys"]) == 3
    assert {k["kid"] for k in doc["keys"]} == on_disk
    assert {k["alg"] for k in doc["keys"]} == {"RS256", "ES256", "EdDSA"}

    # another process rotates; the running server publishes the successor within ~2 s
    rotated = subprocess.run([IDP, "keys", "rotate", "--alg", "ES256"], cwd=server.workdir,
                             env=clean_env(), capture_output=True, text=True, timeout=30)
    assert rotated.returncode == 0, rotated.stderr
    new_kid = json.loads(rotated.stdout)["kid"]
    assert json.loads(rotated.stdout)["state"] == "published"
    deadline = time.monotonic() + 2.5
    while True:
        doc = get(server.base + "/jwks.json")[2]
        if len(doc["keys"]) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(doc["keys"]) == 4, doc
    assert {k["kid"] for k in doc["keys"]} == on_disk | {new_kid}

    # SIGTERM stops it cleanly
    assert server.proc.poll() is None
    assert server.stop() == 0
    assert "Traceback" not in Path(server.stderr_file.name).read_text()


@pytest.mark.parametrize("http_server", ["granian", "gunicorn"])
def test_serve_over_https_with_either_http_server(tmp_path, http_server):
    """`idp serve --certfile --keyfile` (README "Production"), on the default HTTP server and on
    gunicorn: an https issuer, and the provider's own headers on the answer."""
    import ssl

    from tests.live_provider import write_tls_files

    tls = write_tls_files(tmp_path / "tls")
    workdir = tmp_path / "site"
    workdir.mkdir()
    port = free_port()
    srv = Server(workdir, port, tmp_path / "serve.stderr", "--certfile", str(tls["cert"]), "--keyfile",
                 str(tls["key"]), "--http-server", http_server)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=str(tls["ca"]))))
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and srv.proc.poll() is None:
            try:
                answer = opener.open(f"https://localhost:{port}/.well-known/openid-configuration", timeout=5)
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        assert answer is not None, Path(srv.stderr_file.name).read_text()[-3000:]
        assert json.loads(answer.read())["issuer"] == f"https://localhost:{port}"
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in Path(srv.stderr_file.name).read_text()
