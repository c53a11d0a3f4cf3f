"""Soak: a bounded mixed load on the provider as it runs in production, for a fixed time (not a test;
not collected by pytest). Reports errors (must be 0), p99 per endpoint, and the memory of the
gunicorn workers and of Redis over the run (it must level off). Figures: tests/perf/README.md.

    python tests/perf/soak.py                      # 10 minutes, 2 workers
    python tests/perf/soak.py --minutes 2 --json /tmp/soak.json
    python tests/perf/soak.py --smoke              # 20 seconds: the whole pipeline, figures meaningless

The provider: gunicorn `-c python:idp.serving -w 2 -k gthread --threads 4` on its own PostgreSQL
database (IDP_TEST_DATABASE_URL, else the local default) and a redis-server of its own (started here
on a free port in 7100-7999, so its memory is the provider's alone), metrics on. People sign in with
a password and an authenticator app (TOTP). Each load thread repeats one cycle, as people and
services do on results day:

    a complete sign-in (authorize, email, password, TOTP, code exchange)   -> sign_in, token:authorization_code
    3 x userinfo with the access token                                     -> userinfo
    1 x refresh (the rotated token is kept for the next cycle)            -> token:refresh_token
    2 x client_credentials (a service's token)                             -> token:client_credentials
    1 x admin action: change a person's name through the admin API         -> admin:patch_account

A TOTP code is single use: a thread whose people have all signed in during this 30-second step skips
the sign-in (it counts nothing) until the next step. The load is bounded: `--threads` threads, each
waiting for its answer, for `--minutes`; it stops by itself. Memory is sampled every `--sample`
seconds: RSS of each worker (/proc) and Redis's used_memory (INFO).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "perf"))

from loadgen import Connection, percentile  # noqa: E402
from provider_data import benchmark_policies, make_people  # noqa: E402
from signin import SignIn  # noqa: E402

from tests.live_provider import LiveProvider  # noqa: E402
from tests.redis_servers import Node, free_ports  # noqa: E402

SCOPE = "openid profile email access"
REDIRECT = "https://rp.example/cb"


class Timed:
    """A transport that times every request, labelled by what it is (never by its path's ids)."""

    def __init__(self, port: int, record) -> None:
        self.conn, self.record = Connection(port), record

    def request(self, method, path, headers, body=None):
        label = label_of(method, path, body)
        started = time.perf_counter()
        try:
            status, found, data = self.conn.request(method, path, headers, body)
        except Exception as exc:  # noqa: BLE001 - a socket error is an error of the run
            self.record(label, time.perf_counter() - started, None, repr(exc))
            raise
        self.record(label, time.perf_counter() - started, status, data[:200])
        return status, found, data


def label_of(method: str, path: str, body) -> str:
    route = urlsplit(path).path
    if route == "/token":
        grant = parse_qs(body if isinstance(body, str) else (body or b"").decode()).get("grant_type", ["?"])[0]
        return f"token:{grant}"
    if route.startswith("/api/v1/accounts/"):
        return f"admin:{method.lower()}_account"
    if route.startswith("/signin"):
        return "signin pages"
    return route.strip("/") or "/"


class Soak:
    def __init__(self, args, provider, people: list[dict], client: dict, admin: dict, redis_node: Node) -> None:
        self.args, self.provider, self.client, self.admin, self.redis_node = args, provider, client, admin, redis_node
        self.people = people
        self.host = f"localhost:{provider.port}"
        self.basic = "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.samples: list[dict] = []
        self.stop = threading.Event()

    # ---------------------------------------------------------------- recording
    def record(self, label: str, seconds: float, status: int | None, detail) -> None:
        with self.lock:
            self.latency[label].append(seconds)
            if status is None or status >= 400:
                self.errors[label] += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{label}: {status} {detail!r}")

    # ---------------------------------------------------------------- one load thread
    def run_thread(self, index: int) -> None:
        people = self.people[index::self.args.threads]
        signin = SignIn(people, self.client, self.host, SCOPE)
        transport = Timed(self.provider.port, self.record)
        form = {"Host": self.host, "Authorization": self.basic, "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded"}
        access = refresh = None
        name = 0
        while not self.stop.is_set():
            try:
                person = signin.next_person()
            except LookupError:
                person = None  # every person of this thread signed in this TOTP step
            if person is not None:
                started = time.perf_counter()
                try:
                    tokens = signin.run(transport, person)
                    access, refresh = tokens["access_token"], tokens["refresh_token"]
                    self.record("sign_in (whole)", time.perf_counter() - started, 200, "")
                except Exception as exc:  # noqa: BLE001
                    self.record("sign_in (whole)", time.perf_counter() - started, None, str(exc)[:300])
            if access:
                for _ in range(3):
                    transport.request("GET", "/userinfo", {"Host": self.host, "Accept": "application/json",
                                                           "Authorization": f"Bearer {access}"})
            if refresh:
                status, _, data = transport.request("POST", "/token", form,
                                                    f"grant_type=refresh_token&refresh_token={refresh}")
                if status == 200:
                    answer = json.loads(data)
                    access, refresh = answer["access_token"], answer["refresh_token"]
                else:
                    refresh = None
            for _ in range(2):
                transport.request("POST", "/token", form, "grant_type=client_credentials")
            name += 1
            target = self.admin["targets"][index % len(self.admin["targets"])]
            transport.request("PATCH", f"/api/v1/accounts/{target}",
                              {"Host": self.host, "Authorization": f"Bearer {self.admin['token']()}",
                               "Content-Type": "application/json", "Accept": "application/json"},
                              json.dumps({"given_name": f"Soak{index}x{name}"}))

    # ---------------------------------------------------------------- memory
    def sample(self, elapsed: float) -> dict:
        from servers import _children

        rss = []
        for pid in sorted(_children(self.provider.proc.pid)):
            try:
                with open(f"/proc/{pid}/status") as fh:
                    rss.append(next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) // 1024)
            except (OSError, StopIteration):
                pass
        redis = self.redis_node.client()
        info = redis.info("memory")
        kinds: dict[str, int] = defaultdict(int)  # keys by kind: prefix, then the record's name
        for key in redis.scan_iter(count=1000):
            kinds[key.removeprefix(self.provider.prefix).split(":", 1)[0]] += 1
        with self.lock:
            requests_so_far = sum(len(v) for v in self.latency.values())
        row = {"seconds": round(elapsed), "worker_rss_mib": rss, "redis_used_memory_mib":
               round(info["used_memory"] / 2**20, 2), "redis_keys": redis.dbsize(), "redis_keys_by_kind": dict(kinds),
               "requests": requests_so_far}
        self.samples.append(row)
        print(f"soak: {row['seconds']:>4} s  workers {'/'.join(map(str, rss))} MiB  redis "
              f"{row['redis_used_memory_mib']} MiB ({row['redis_keys']} keys: "
              f"{', '.join(f'{k} {n}' for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:4])})  "
              f"{requests_so_far} requests", flush=True)
        return row

    def run(self) -> dict:
        threads = [threading.Thread(target=self.run_thread, args=(i,), daemon=True) for i in range(self.args.threads)]
        started = time.monotonic()
        self.sample(0)
        for thread in threads:
            thread.start()
        deadline = started + self.args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(self.args.sample, max(0.0, deadline - time.monotonic())))
            self.sample(time.monotonic() - started)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        wall = time.monotonic() - started
        endpoints = {}
        for label, values in sorted(self.latency.items()):
            ordered = sorted(values)
            endpoints[label] = {"count": len(ordered), "per_second": round(len(ordered) / wall, 1),
                                "p50_ms": round(percentile(ordered, 50) * 1000, 1),
                                "p99_ms": round(percentile(ordered, 99) * 1000, 1),
                                "errors": self.errors.get(label, 0)}
        return {"minutes": self.args.minutes, "wall_seconds": round(wall), "threads": self.args.threads,
                "workers": self.args.workers, "errors": sum(self.errors.values()),
                "error_samples": self.error_samples, "endpoints": endpoints, "memory": self.samples,
                "nproc": os.cpu_count(), "load_average_end": os.getloadavg()}


def one_address_policies(folder: Path) -> Path:
    """The shipped policies with the per-address limits of sign-in and MFA raised: on results day
    people come from thousands of addresses, here all from 127.0.0.1 (compare.py lifts the sign-in
    ones the same way). Every other rule stays as shipped."""
    import re

    benchmark_policies(folder)
    security = folder / "security.toml"
    raised, count = re.subn(r'^(mfa_per_ip) = ".*"$', r'\1 = "1000000 per minute"', security.read_text(),
                            flags=re.MULTILINE)
    if count != 1:
        raise RuntimeError("policies/security.toml no longer has mfa_per_ip")
    security.write_text(raised)
    return folder


def admin_setup(provider, people: list[dict]) -> dict:
    """A board member's admin API access, as a console has it: ``token()`` is a live access token,
    renewed with its refresh token before it expires (the soak outlasts one access token)."""
    import urllib.request

    from idp.oidc import grants

    board = provider.make_account(email="board.soak@board.example", role="board", centre=None, mfa=False)
    client = provider.create_client("soak admin", redirect_uris=["https://console.example/cb"],
                                    grant_types=["authorization_code", "refresh_token"],
                                    extra=["--scope", "openid admin_api"])
    code = secrets.token_urlsafe(32)
    with provider.app().app_context():
        grants.CODES.put_json(grants._code_id(code), {
            "client_id": client["client_id"], "redirect_uri": "https://console.example/cb",
            "scope": "openid admin_api", "nonce": None, "code_challenge": None, "code_challenge_method": None,
            "account_id": board["id"], "auth_time": int(time.time()), "amr": ["pwd", "otp"],
            "acr": "urn:idp:acr:mfa", "sid": None, "grant_id": grants._grant_id_for(code),
            "expires_at": int(time.time()) + 60}, 60)
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def token_request(body: str) -> dict:
        request = urllib.request.Request(provider.issuer + "/token", headers={"Authorization": f"Basic {basic}"},
                                         data=body.encode())
        with opener.open(request, timeout=30) as answer:
            got = json.loads(answer.read())
        return {"access": got["access_token"], "refresh": got["refresh_token"],
                "renew_at": time.monotonic() + got["expires_in"] / 2}

    held = token_request(f"grant_type=authorization_code&code={code}&redirect_uri=https://console.example/cb")
    lock = threading.Lock()

    def token() -> str:
        nonlocal held
        with lock:
            if time.monotonic() >= held["renew_at"]:
                held = token_request(f"grant_type=refresh_token&refresh_token={held['refresh']}")
            return held["access"]

    targets = [provider.make_account(email=f"user{i}.soak@centre.example", role="user", centre="12345",
                                     mfa=False)["sub"] for i in range(4)]
    return {"token": token, "targets": targets}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=6, help="load threads (each waits for its answers)")
    parser.add_argument("--people", type=int, default=240, help="people with an authenticator app")
    parser.add_argument("--sample", type=float, default=30, help="seconds between memory samples")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--smoke", action="store_true", help="20 seconds, 60 people: the pipeline only")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.people, args.sample = 1 / 3, 60, 5

    workdir = Path(tempfile.mkdtemp(prefix="idp-soak-"))
    port = free_ports(1)[0]
    redis_node = Node(workdir / "redis", port, ["maxmemory 512mb"]).start()
    try:
        with LiveProvider(workdir / "provider", name="soak", log_level="WARNING", metrics=True,
                          redis=f"redis://127.0.0.1:{port}/0") as provider:
            provider.setup()
            provider.env["IDP_POLICIES_DIR"] = str(one_address_policies(workdir / "policies"))
            print(f"soak: making {args.people} people", flush=True)
            people = make_people(provider, args.people)
            client = provider.create_client("soak rp", redirect_uris=[REDIRECT],
                                            grant_types=["authorization_code", "refresh_token", "client_credentials"],
                                            extra=["--scope", SCOPE])
            client["redirect_uri"] = REDIRECT
            provider.start(workers=args.workers, threads=4)
            admin = admin_setup(provider, people)
            print(f"soak: {args.minutes:g} min, {args.threads} load threads, {args.workers} workers", flush=True)
            result = Soak(args, provider, people, client, admin, redis_node).run()
            if "Traceback" in provider.log_tail(10**8):
                result["server_tracebacks"] = provider.log_tail(3000)
    finally:
        redis_node.stop()

    print(f"\n{'endpoint':<28}{'count':>8}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for label, row in result["endpoints"].items():
        print(f"{label:<28}{row['count']:>8}{row['per_second']:>8}{row['p50_ms']:>9}{row['p99_ms']:>9}"
              f"{row['errors']:>8}")
    first, last = result["memory"][0], result["memory"][-1]
    print(f"\nworkers RSS MiB: start {first['worker_rss_mib']} end {last['worker_rss_mib']}; "
          f"Redis used_memory MiB: start {first['redis_used_memory_mib']} end {last['redis_used_memory_mib']}")
    print(f"errors: {result['errors']}" + (f" e.g. {result['error_samples'][:3]}" if result["errors"] else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["errors"] or result.get("server_tracebacks") else 0


if __name__ == "__main__":
    sys.exit(main())
