"""Redis set-ups a test starts itself from Debian's redis-server, on free loopback ports in
7100-7999: a Sentinel set-up (a primary, a replica and three Sentinels) and a Cluster of three
primaries (made with `redis-cli --cluster create`). Nothing is written to disk but their own
folders; everything is stopped (by the process ids started here) at the end.

    with SentinelSetup(tmp_path) as sentinel:
        sentinel.url          # redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/idp
        sentinel.kill_primary()   # SIGKILL; the Sentinels promote the replica
    with ClusterSetup(tmp_path) as cluster:
        cluster.url           # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

PORTS = range(7100, 8000)
SERVICE = "idp"


class RedisSetupError(RuntimeError):
    """A server did not start, or the set-up did not come together in time."""


def redis_server() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server")
                                             else None)
    if found is None:
        raise RedisSetupError("redis-server is not installed (Debian's redis-server package; scripts/test "
                              "installs it)")
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int, *, with_bus: bool = False) -> list[int]:
    """``n`` free ports from PORTS (a Cluster node also needs its bus port, +10000), picked at random
    so that two test processes starting at once rarely try the same ones."""
    candidates = list(PORTS)
    random.shuffle(candidates)
    chosen = [p for p in candidates if _free(p) and (not with_bus or _free(p + 10000))]
    if len(chosen) < n:
        raise RedisSetupError(f"fewer than {n} free ports in {PORTS.start}-{PORTS.stop - 1}")
    return chosen[:n]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise RedisSetupError(f"{what} within {timeout}s (last error: {last!r})")


class Node:
    """One redis-server process (a server or a Sentinel) started from a config file in ``folder``."""

    def __init__(self, folder: Path, port: int, lines: list[str], *, sentinel: bool = False) -> None:
        self.folder, self.port, self.sentinel = folder, port, sentinel
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / f"{'sentinel' if sentinel else 'redis'}-{port}.conf"
        base = [f"port {port}", "bind 127.0.0.1", f"dir {folder}", "save \"\"", "appendonly no",
                "protected-mode no", f"logfile {folder / f'{port}.log'}"]
        self.conf.write_text("\n".join(base + lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Node:
        args = [redis_server(), str(self.conf)] + (["--sentinel"] if self.sentinel else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client().ping(), 10, f"redis-server on {self.port} answering")
        return self

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=1,
                           decode_responses=True, **kwargs)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.folder / f"{self.port}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class SentinelSetup:
    """A primary, ``replicas`` replicas and three Sentinels (quorum 2) that fail over one second
    after the primary stops answering."""

    DOWN_AFTER_MS = 1000

    def __init__(self, folder: Path, replicas: int = 1, *, primary_lines: list[str] = ()) -> None:
        self.folder = Path(folder)
        primary_port, *ports = free_ports(4 + replicas)
        replica_ports, sentinel_ports = ports[:replicas], ports[replicas:]
        self.primary = Node(self.folder / "primary", primary_port, list(primary_lines))
        self.replicas = [Node(self.folder / f"replica-{port}", port, [f"replicaof 127.0.0.1 {primary_port}"])
                         for port in replica_ports]
        self.sentinels = [
            Node(self.folder / f"sentinel-{port}", port, [
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2",
                f"sentinel down-after-milliseconds {SERVICE} {self.DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SERVICE} 10000",
                f"sentinel parallel-syncs {SERVICE} 1",
            ], sentinel=True)
            for port in sentinel_ports]
        self.url = f"redis+sentinel://{','.join(f'127.0.0.1:{s.port}' for s in self.sentinels)}/{SERVICE}"

    def __enter__(self) -> SentinelSetup:
        try:
            self.primary.start()
            for replica in self.replicas:
                replica.start()
            wait_until(lambda: all(r.client().info("replication")["master_link_status"] == "up"
                                   for r in self.replicas), 15, "the replicas in sync")
            for sentinel in self.sentinels:
                sentinel.start()
            wait_until(self._everyone_sees_everyone, 20, "the Sentinels agreeing on the primary and replica")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _everyone_sees_everyone(self) -> bool:
        for sentinel in self.sentinels:
            client = sentinel.client()
            state = client.sentinel_master(SERVICE)
            if state["num-other-sentinels"] < len(self.sentinels) - 1 or state["num-slaves"] < len(self.replicas):
                return False
        return True

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def node(self, port: int) -> Node:
        return next(n for n in (self.primary, *self.replicas) if n.port == port)

    def kill_primary(self) -> Node:
        """SIGKILL the current primary (no goodbye to anyone); returns its Node."""
        node = self.node(self.primary_port())
        node.kill()
        return node

    def wait_for_failover(self, old_port: int, timeout: float = 30) -> int:
        """The port of the new primary, once every Sentinel names it and it accepts writes."""
        def promoted():
            ports = {int(s.client().sentinel_get_master_addr_by_name(SERVICE)[1]) for s in self.sentinels
                     if s.proc and s.proc.poll() is None}
            if len(ports) == 1 and old_port not in ports:
                port = ports.pop()
                if self.node(port).client().info("replication")["role"] == "master":
                    return port
            return None

        return wait_until(promoted, timeout, "a failover to the replica")

    def fail_over(self) -> int:
        """Make the Sentinels promote the replica now, the primary still running (SENTINEL FAILOVER);
        the new primary's port."""
        old_port = self.primary_port()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", SERVICE)
        return self.wait_for_failover(old_port)

    def close(self) -> None:
        for node in [*self.sentinels, *self.replicas, self.primary]:
            node.stop()


#: a primary that cannot be told it was demoted: what the Sentinels' reconfiguration sends (in one
#: MULTI) includes these, so it fails as a whole and the old primary goes on as a primary with its
#: clients connected, as one cut off from the Sentinels by a network partition would
UNDEMOTABLE = ['rename-command SLAVEOF ""', 'rename-command REPLICAOF ""']


class ClusterSetup:
    """A Redis Cluster of three primaries (no replicas: slot failover is not what these tests show)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.nodes = [Node(self.folder / f"node-{port}", port, [
            "cluster-enabled yes", f"cluster-config-file nodes-{port}.conf", "cluster-node-timeout 2000"])
            for port in free_ports(3, with_bus=True)]
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def __enter__(self) -> ClusterSetup:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
            done = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                                   "--cluster-replicas", "0", "--cluster-yes"],
                                  capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise RedisSetupError(f"redis-cli --cluster create: {done.stdout[-2000:]} {done.stderr[-2000:]}")
            wait_until(lambda: all(n.client().cluster("info")["cluster_state"] == "ok" for n in self.nodes), 20,
                       "the cluster's state ok on every node")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
