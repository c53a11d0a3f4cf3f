"""A PostgreSQL server of a test's own (initdb + pg_ctl from Debian's packages), on a free port in
7500-7599 and a folder of its own, so a test can stop and restart it; the shared server on 5432 is
never touched. As root (CI), the server runs as the ``postgres`` user, which initdb requires.

    with PostgresServer() as pg:
        pg.url                 # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        pg.restart()           # pg_ctl restart -m fast: every connection is closed
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PORTS = range(7500, 7600)


class PostgresSetupError(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise PostgresSetupError("PostgreSQL's server programs are not installed (/usr/lib/postgresql/*/bin)")
    return Path(found[-1])


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise PostgresSetupError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = _free_port()
        # under /tmp, not pytest's folder: the postgres user must be able to reach it
        self.folder = Path(tempfile.mkdtemp(prefix="idp-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise PostgresSetupError(f"{' '.join(args[:2])}: exit {done.returncode}: {done.stderr[-2000:]}"
                                     f"{self.log_tail()}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                  *extra)

    def __enter__(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync")
            self._pg_ctl("start")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def restart(self) -> None:
        """Stop (closing every connection, as an operator's restart does) and start again."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def start(self) -> None:
        self._pg_ctl("start")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return "\n" + self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except PostgresSetupError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
