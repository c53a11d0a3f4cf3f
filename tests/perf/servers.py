"""The three servers compare.py measures, one at a time, and what it reads from them (not a test).

- ``start_node``: node oidc-provider 9 (node-reference/server.mjs), its own Redis key prefix.
- ``start_wsgi``: the bare-Flask ceiling and the provider, with one command line (``wsgi_command``,
  gunicorn or granian) so both get exactly the same HTTP server and worker settings.
- ``Placement``: which cores the servers and the load generator get (taskset).

Every server runs in its own session and is stopped through its own process id.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import pin_prefix

HERE = Path(__file__).resolve().parent
NODE_REFERENCE = HERE / "node-reference"


# ======================================================================== cores
@dataclass(frozen=True)
class Placement:
    """Servers on ``server_cpus``, the load generator on ``load_cpus``; both None: unpinned."""

    server_cpus: list[int] | None
    load_cpus: list[int] | None
    description: str

    @classmethod
    def choose(cls, workers: int, pin: bool) -> Placement:
        """One core per server worker and at least one left for the load generator, or nothing
        pinned: on 2 cores, 2 workers share both cores with the load generator (a scale-out
        figure, not a per-core one)."""
        cpus = sorted(os.sched_getaffinity(0))
        if not pin:
            return cls(None, None, f"unpinned (--no-pin): servers and load generator share cores {_span(cpus)}")
        if len(cpus) < 2:
            return cls(None, None, f"unpinned: only one core ({_span(cpus)}) for servers and load generator")
        if len(cpus) < workers + 1:
            return cls(None, None, f"unpinned: {workers} workers + the load generator need {workers + 1} cores, "
                                   f"this machine has {len(cpus)}: all share cores {_span(cpus)}")
        server, load = cpus[:workers], cpus[workers:]
        return cls(server, load, f"servers pinned to core(s) {_span(server)}, load generator to core(s) "
                                 f"{_span(load)} (taskset); PostgreSQL and Redis are not pinned")


def _span(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))


# ======================================================================== a running server
@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    _log: object = field(repr=False, default=None)

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the children (gunicorn or granian workers, node cluster
        workers), or the process itself when it has none."""
        return _children(self.proc.pid) or [self.proc.pid]

    def rss_kib(self) -> list[int]:
        """Resident memory of each worker, KiB."""
        sizes = []
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    sizes += [int(line.split()[1]) for line in fh if line.startswith("VmRSS:")]
            except OSError:
                pass
        return sizes

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the whole process tree so far."""
        ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
        try:
            for pid in [self.proc.pid] + _children(self.proc.pid):
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            return None
        return total

    def allowed_cpus(self) -> str:
        try:
            with open(f"/proc/{self.worker_pids()[0]}/status") as fh:
                return next(line.split()[1] for line in fh if line.startswith("Cpus_allowed_list:"))
        except (OSError, StopIteration):
            return "?"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's arbiter / granian's main process / node's primary stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
                self.proc.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return kids


def http_status(port: int, path: str, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _launch(name: str, cmd: list[str], *, cwd: Path, env: dict, port: int, log_path: Path,
            ready, timeout: float = 60) -> Server:
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, proc, port, log_path, log)
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if ready(server):
                return server
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start (exit {proc.poll()}, last: {last}): {' '.join(cmd)}\n"
                       f"{server.log_tail()}")


# ======================================================================== WSGI servers (ceiling, provider)
HTTP_SERVERS = ("gunicorn", "granian")


def wsgi_command(http_server: str, app_spec: str, port: int, workers: int, threads: int) -> list[str]:
    """The HTTP server and worker settings of the ceiling and of the provider, the same for both, on
    plain http on loopback; the server's own access log off for both (the provider writes its own
    access line per request, idp/logs.py). ``app_spec``: ``module:name`` or ``module:factory()``.

    gunicorn: gthread workers (``threads`` each). granian: its Rust HTTP server, WSGI interface,
    ``threads`` blocking threads per worker running the app."""
    if http_server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--timeout", "60", app_spec]
    factory = app_spec.endswith("()")
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", str(workers),
            "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--workers-kill-timeout", "5", *(["--factory"] if factory else []), app_spec.removesuffix("()")]


def start_wsgi(name: str, app_spec: str, *, http_server: str, cwd: Path, env: dict, port: int, workers: int,
               threads: int, cpus: list[int] | None, log_path: Path, ready_path: str, host: str) -> Server:
    cmd = pin_prefix(cpus) + wsgi_command(http_server, app_spec, port, workers, threads)

    def ready(server: Server) -> bool:
        return len(_children(server.proc.pid)) >= workers and http_status(port, ready_path, host) == 200

    return _launch(name, cmd, cwd=cwd, env=env, port=port, log_path=log_path, ready=ready)


# ======================================================================== node oidc-provider
def node_versions() -> dict:
    """node's version and the oidc-provider and ioredis versions npm installed."""
    import json

    versions = {"node": subprocess.run(["node", "--version"], capture_output=True, text=True,
                                       check=False).stdout.strip()}
    for package in ("oidc-provider", "ioredis"):
        try:
            meta = json.loads((NODE_REFERENCE / "node_modules" / package / "package.json").read_text())
            versions[package] = meta["version"]
        except (OSError, ValueError, KeyError):
            versions[package] = None
    return versions


def check_node() -> str | None:
    """Why the node reference cannot run here, or None."""
    import shutil

    if shutil.which("node") is None:
        return "node (>= 20) is not on PATH"
    if not (NODE_REFERENCE / "node_modules" / "oidc-provider" / "package.json").is_file():
        folder = NODE_REFERENCE.relative_to(HERE.parents[1])
        return f"{NODE_REFERENCE}/node_modules is missing: run `npm ci --prefix {folder}`"
    return None


def start_node(*, port: int, workers: int, cpus: list[int] | None, redis_url: str, redis_prefix: str,
               client_id: str, client_secret: str, log_path: Path, env: dict) -> Server:
    node_env = {**env, "NODE_ENV": "production", "PORT": str(port), "ISSUER": f"http://localhost:{port}",
                "WORKERS": str(workers), "REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix,
                "CLIENT_ID": client_id, "CLIENT_SECRET": client_secret}
    cmd = pin_prefix(cpus) + ["node", "server.mjs"]

    def ready(server: Server) -> bool:
        return "ready " in server.log_tail(100_000)

    return _launch("node oidc-provider", cmd, cwd=NODE_REFERENCE, env=node_env, port=port, log_path=log_path,
                   ready=ready)
