#!/usr/bin/env python3
"""The provider, node oidc-provider 9 and the bare framework, measured side by side in one run
(a benchmark, not a test; tests/perf/README.md explains every figure).

    python tests/perf/compare.py [--workers N] [--json FILE] [--compare OLD.json] [--smoke]

One server at a time, one endpoint at a time, each for a fixed time after a warm-up:

    node     node-reference/server.mjs (oidc-provider 9, Redis adapter): client_credentials,
             introspection, jwks, discovery
    ceiling  bare_flask.py under the provider's HTTP server and settings: hello
    idp      the provider on PostgreSQL + Redis (`idp setup`, people with a password at the shipped
             argon2id parameters and an authenticator app, a confidential client): client_credentials,
             introspection, jwks, discovery, userinfo, refresh_token, sign_in
    argon2   argon2id verifications per second in one process at the shipped parameters

then prints req/s (sign-ins/s), p50/p99, errors, RSS per worker, ratios to node and to the ceiling,
what one sign-in leaves in Redis and PostgreSQL, and SQL/Redis round trips per request.
Needs `npm ci --prefix tests/perf/node-reference` and PostgreSQL + Redis (IDP_TEST_DATABASE_URL /
IDP_TEST_REDIS_URL, else the local defaults). Exit code 1 if any request failed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for path in (str(REPO_ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import footprint
import report
from loadgen import Connection, Fixed, RefreshChain, refresh_tokens_needed, run_python, run_wrk
from provider_data import benchmark_policies, make_people
from servers import HTTP_SERVERS, Placement, check_node, node_versions, start_node, start_wsgi
from signin import SignIn, SignInFlow

SCOPE = "openid profile email access offline_access"
REDIRECT_URI = "https://rp.bench.example/callback"
#: sign-ins one core could do at most (argon2id alone allows ~30/s here): sizes the pool of people
MAX_SIGN_INS_PER_SECOND_PER_WORKER = 40
RESERVED_PEOPLE = 3  # the checked sign-in before timing, and two for the round-trip count
NOTES = [
    "logging: one JSON access line per request on node and the provider (both to a file); none on the ceiling",
    ("node introspects an opaque client_credentials token (read from Redis): oidc-provider refuses to introspect "
     "its JWT access tokens (unsupported_token_type); the provider introspects a person's JWT access token"),
    ("sign_in: the provider's sign-in rate limits are raised for the run (a copy of policies/ with "
     "[rate_limits] sign_in_per_ip/sign_in_per_email/mfa_per_ip at 1000000 per minute); argon2id parameters as shipped"),
    "plain http on loopback for every server",
]


_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"  [{time.monotonic() - _T0:5.1f} s] {message}", file=sys.stderr, flush=True)


# ======================================================================== requests and checks
def form_headers(host: str, client_id: str, secret: str) -> dict:
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Host": host, "Accept": "application/json", "Authorization": basic,
            "Content-Type": "application/x-www-form-urlencoded"}


def jwt_alg(token: str) -> str | None:
    try:
        head = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"]
    except (ValueError, KeyError, IndexError):
        return None


def check(port: int, name: str, spec: dict, accept) -> dict:
    """One request (on a new connection: the last one may have idled out), its answer checked, so a
    broken endpoint stops the run instead of being timed."""
    body = spec["body_template"].replace("{token}", spec["probe"]) if "body_template" in spec else spec.get("body")
    conn = Connection(port)
    try:
        status, _, data = conn.request(spec["method"], spec["path"], spec["headers"], body)
    finally:
        conn.close()
    try:
        answer = json.loads(data)
        ok = 200 <= status < 300 and accept(answer)
    except (ValueError, KeyError, TypeError):
        answer, ok = None, False
    if not ok:
        raise RuntimeError(f"{name}: HTTP {status}: {data[:500]!r}")
    return answer


# ======================================================================== measuring
class Bench:
    def __init__(self, args, placement: Placement, wrk: str | None, workdir: Path) -> None:
        self.args, self.placement, self.wrk, self.workdir = args, placement, wrk, workdir
        self.rows: list[dict] = []

    def measure(self, server, name: str, endpoint: str, spec: dict | None = None, flows=None,
                tokens: list[str] | None = None, unit: str = "req/s") -> dict:
        """The warm-up, then the measured run, each a run of its own (the server's CPU is read between
        them). ``flows``: (warm-up, measured) Python client flows; else ``spec`` through wrk (or the
        Python client), with ``tokens``, split in two, for a refresh-token chain."""
        a, load = self.args, self.placement.load_cpus
        halves = [tokens[len(tokens) // 2:], tokens[:len(tokens) // 2]] if tokens else [[], []]

        def run(seconds: float, part: int) -> dict:
            if flows is None and self.wrk:
                return run_wrk(self.wrk, f"http://127.0.0.1:{server.port}", spec, halves[part], a.concurrency, load,
                               seconds, self.workdir, f"{name}-{endpoint}")
            if flows is not None:
                flow = flows[part]
            elif tokens:
                flow = RefreshChain(spec, [halves[part][i::a.concurrency] for i in range(a.concurrency)])
            else:
                flow = Fixed(spec)
            return run_python(server.port, flow, a.concurrency, a.processes, seconds, load)

        if a.warmup > 0:
            run(a.warmup, 0)
        cpu0 = server.cpu_seconds()
        res = run(a.duration, 1)
        cpu1 = server.cpu_seconds()
        cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        row = {"server": name, "endpoint": endpoint, "unit": unit, "count": res["count"],
               "seconds": round(res["seconds"], 3), "rate": res["count"] / res["seconds"] if res["seconds"] else 0.0,
               "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "errors": res["errors"],
               "error_samples": res["samples"], "rss_kib_per_worker": server.rss_kib(),
               "server_cpu_cores": None if cpu is None else round(cpu / res["seconds"], 3),
               "per_cpu_second": None if not cpu else res["count"] / cpu,
               "client_cpu_cores": round(res["client_cpu"] / max(res["seconds"], 1e-9), 3),
               "generator": "wrk" if flows is None and self.wrk else "python"}
        self.rows.append(row)
        progress(f"{name} {endpoint}: {row['rate']:.1f} {unit}, {row['errors']} errors")
        return row


def run_node(bench: Bench, provider, env: dict) -> None:
    from idp import secrets
    from tests.live_provider import free_port, redis_url

    a = bench.args
    client_id, secret = "bench-service", secrets.token(32)
    server = start_node(port=free_port(), workers=a.workers, cpus=bench.placement.server_cpus, redis_url=redis_url(),
                        redis_prefix=provider.prefix + "node-reference:", client_id=client_id, client_secret=secret,
                        log_path=bench.workdir / "node.log", env=env)
    try:
        host = f"localhost:{server.port}"
        form = form_headers(host, client_id, secret)
        get = {"Host": host, "Accept": "application/json"}
        token = {"method": "POST", "path": "/token", "headers": form, "body": "grant_type=client_credentials"}
        opaque = check(server.port, "node opaque token", {**token, "body": token["body"] + "&resource=https%3A%2F%2F"
                                                   "api.bench.example%2Fopaque"}, lambda d: d["access_token"])
        specs = {
            "client_credentials": (token, lambda d: jwt_alg(d["access_token"]) == "ES256"),
            "introspection": ({"method": "POST", "path": "/token/introspection", "headers": form,
                               "body": f"token={opaque['access_token']}&token_type_hint=access_token"},
                              lambda d: d["active"] is True and d["client_id"] == client_id),
            "jwks": ({"method": "GET", "path": "/jwks", "headers": get}, lambda d: d["keys"][0]["alg"] == "ES256"),
            "discovery": ({"method": "GET", "path": "/.well-known/openid-configuration", "headers": get},
                          lambda d: d["issuer"] == f"http://{host}"),
        }
        for endpoint, (spec, accept) in specs.items():
            check(server.port, f"node {endpoint}", spec, accept)
            bench.measure(server, "node", endpoint, spec)
    finally:
        server.stop()


def run_ceiling(bench: Bench, env: dict) -> None:
    from tests.live_provider import free_port

    a, port = bench.args, free_port()
    server = start_wsgi("bare Flask", "bare_flask:app", http_server=a.http_server, cwd=HERE, env=env, port=port,
                        workers=a.workers, threads=a.threads, cpus=bench.placement.server_cpus,
                        log_path=bench.workdir / "ceiling.log", ready_path="/", host=f"localhost:{port}")
    try:
        bench.measure(server, "ceiling", "hello", {"method": "GET", "path": "/",
                                                   "headers": {"Host": f"localhost:{port}"}})
    finally:
        server.stop()


def run_provider(bench: Bench, provider, env: dict, people: list[dict], client: dict, pool: list[str]) -> dict:
    """The provider's endpoints; returns what one sign-in left in Redis and PostgreSQL."""
    import redis

    from tests.live_provider import redis_url

    a = bench.args
    server = start_wsgi("idp", "idp:create_app()", http_server=a.http_server, cwd=provider.workdir, env=env,
                        port=provider.port,
                            workers=a.workers, threads=a.threads, cpus=bench.placement.server_cpus,
                            log_path=provider.workdir / "server.log", ready_path="/readyz",
                            host=f"localhost:{provider.port}")
    try:
        host = f"localhost:{provider.port}"
        # one checked sign-in first: it gives the person's tokens, and shows what a session stores
        r = redis.Redis.from_url(redis_url())
        keys_before = footprint.redis_keys(r, provider.prefix)
        person, conn = people[0], Connection(provider.port)
        signin = SignIn([person], client, host, SCOPE)
        try:
            tokens = signin.run(conn, signin.next_person())
        except Exception as exc:
            raise RuntimeError(f"the checked sign-in failed: {exc}\n{server.log_tail()}") from exc
        finally:
            conn.close()
        fresh = footprint.redis_keys(r, provider.prefix) - keys_before
        session = {"redis_keys": footprint.new_keys(r, provider.prefix, fresh)}
        session["redis_bytes"] = sum(k["bytes"] for k in session["redis_keys"])
        session["database_row_bytes"] = footprint.session_row_bytes(provider.database_url)
        r.close()

        form = form_headers(host, client["client_id"], client["client_secret"])
        get = {"Host": host, "Accept": "application/json"}
        access = tokens["access_token"]
        refresh = {"method": "POST", "path": "/token", "headers": form, "probe": pool.pop(),
                   "body_template": "grant_type=refresh_token&refresh_token={token}"}
        specs = {
            "client_credentials": ({"method": "POST", "path": "/token", "headers": form,
                                    "body": "grant_type=client_credentials"},
                                   lambda d: d["token_type"].lower() == "bearer" and "refresh_token" not in d
                                   and jwt_alg(d["access_token"]) == "ES256"),
            "introspection": ({"method": "POST", "path": "/introspect", "headers": form,
                               "body": f"token={access}&token_type_hint=access_token"},
                              lambda d: d["active"] is True and d["sub"] == person["sub"]
                              and jwt_alg(access) == "ES256"),
            "jwks": ({"method": "GET", "path": "/jwks.json", "headers": get}, lambda d: len(d["keys"]) >= 1),
            "discovery": ({"method": "GET", "path": "/.well-known/openid-configuration", "headers": get},
                          lambda d: d["issuer"] == provider.issuer),
            "userinfo": ({"method": "GET", "path": "/userinfo",
                          "headers": {**get, "Authorization": f"Bearer {access}"}},
                         lambda d: d["sub"] == person["sub"]),
            "refresh_token": (refresh, lambda d: d["refresh_token"] and d["id_token"]),
        }
        for endpoint, (spec, accept) in specs.items():
            check(server.port, f"idp {endpoint}", spec, accept)
            bench.measure(server, "idp", endpoint, spec, tokens=pool if "body_template" in spec else None)
        # warm-up and measured run sign in different people: a TOTP code is single use
        load = people[RESERVED_PEOPLE:]
        cut = math.ceil(len(load) * a.warmup / (a.warmup + a.duration))
        flows = [SignInFlow([part[i::a.concurrency] for i in range(a.concurrency)], client, host, SCOPE)
                 for part in (load[:cut], load[cut:])]
        bench.measure(server, "idp", "sign_in", flows=flows, unit="sign-ins/s")
        if "Traceback" in server.log_tail(10_000_000):
            print("compare: WARNING: the provider logged a traceback:\n" + server.log_tail(3000), file=sys.stderr)
        return session
    finally:
        server.stop()


def _argon2_worker(params: dict, duration: float, cpus, results) -> None:
    from argon2 import PasswordHasher, Type

    if cpus:
        os.sched_setaffinity(0, cpus[:1])
    hasher = PasswordHasher(time_cost=params["time_cost"], memory_cost=params["memory_kib"],
                            parallelism=params["parallelism"], type=Type.ID)
    stored, count, start = hasher.hash("correct horse battery staple"), 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        hasher.verify(stored, "correct horse battery staple")
        count += 1
    results.put(count / (time.perf_counter() - start))


def argon2_ceiling(duration: float, cpus: list[int] | None) -> dict:
    """argon2id verifications per second in one process (on the servers' first core when pinned)."""
    import multiprocessing as mp

    from idp import policy

    pw = policy.load(None).sec("password")  # the shipped policies
    params = {"memory_kib": pw.argon2_memory_kib, "time_cost": pw.argon2_time_cost,
              "parallelism": pw.argon2_parallelism}
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_argon2_worker, args=(params, duration, cpus, results), daemon=True)
    proc.start()
    per_second = results.get(timeout=duration + 60)
    proc.join(timeout=10)
    progress(f"argon2id: {per_second:.1f} verifications/s")
    return {**params, "per_second": per_second}


def round_trips(provider, client: dict, people: list[dict], refresh_tokens: list[str]) -> dict:
    """SQL statements and Redis round trips per request, counted in-process (footprint.py)."""
    from urllib.parse import urlencode

    host = provider.issuer.split("//", 1)[1]
    form = form_headers(host, client["client_id"], client["client_secret"])
    signin = SignIn(people[1:RESERVED_PEOPLE], client, host, SCOPE)
    access = {}

    def request(method, path, headers=dict, body=None):
        """A call for round_trips_per_request; ``headers`` and ``body`` are made when it runs."""
        def call(transport):
            status, _, data = transport.request(method, path, headers(), body() if body else None)
            if status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return call

    def sign_in(transport):
        access["token"] = signin.run(transport, signin.next_person())["access_token"]

    calls = {  # in this order: the sign-in gives the access token the next calls use
        "sign_in": sign_in,
        "client_credentials": request("POST", "/token", lambda: form, lambda: "grant_type=client_credentials"),
        "introspection": request("POST", "/introspect", lambda: form, lambda: urlencode(
            {"token": access["token"], "token_type_hint": "access_token"})),
        "jwks": request("GET", "/jwks.json"),
        "discovery": request("GET", "/.well-known/openid-configuration"),
        "userinfo": request("GET", "/userinfo", lambda: {"Authorization": f"Bearer {access['token']}"}),
        "refresh_token": request("POST", "/token", lambda: form,
                                 lambda: f"grant_type=refresh_token&refresh_token={refresh_tokens.pop()}"),
    }
    return footprint.round_trips_per_request(provider.app(), provider.issuer, calls)


# ======================================================================== main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes for the provider and the ceiling, node processes (default 1)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker running the app (gunicorn gthread / granian blocking threads; 4)")
    parser.add_argument("--id-token-alg", default="ES256", choices=("ES256", "RS256", "EdDSA"),
                        help="the benchmark client's ID token algorithm (a per-client setting; the provider's "
                             "default is RS256, whose signature costs ~1 ms of CPU; default ES256)")
    parser.add_argument("--http-server", choices=HTTP_SERVERS, default="granian",
                        help="the WSGI server for the provider and the ceiling (default granian, as `idp serve`)")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections (default 16)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per endpoint (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (default 2)")
    parser.add_argument("--argon2-seconds", type=float, default=5.0, help="argon2id ceiling run (default 5)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator where one request is the unit: wrk if on PATH (auto), or the "
                             "built-in Python client (the sign-in always uses the Python client)")
    parser.add_argument("--processes", type=int, default=4, help="Python client processes (default 4)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin anything to cores")
    parser.add_argument("--json", metavar="FILE", help="write every figure, with machine facts, as JSON")
    parser.add_argument("--compare", metavar="OLD_JSON", help="also print this run's figures over an older run's")
    parser.add_argument("--smoke", action="store_true",
                        help="the whole pipeline in seconds (1 connection, 1 s per endpoint, no warm-up): "
                             "checks the benchmark works, measures nothing worth keeping")
    args = parser.parse_args(argv)
    if args.smoke:
        args.concurrency, args.duration, args.warmup, args.argon2_seconds, args.processes = 1, 1.0, 0.0, 1.0, 1
    if args.workers < 1 or args.concurrency < 1 or args.duration <= 0:
        parser.error("--workers, --concurrency and --duration must be positive")
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not on PATH")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from tests.live_provider import LiveProvider, ProviderError, base_env

    problem = check_node()
    if problem:
        print(f"compare: {problem}", file=sys.stderr)
        return 2
    placement, usable_cpus = Placement.choose(args.workers, args.pin), sorted(os.sched_getaffinity(0))
    if placement.load_cpus:
        os.sched_setaffinity(0, placement.load_cpus)  # this process and its helpers stay off the servers' cores
    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()[0]
    t_start = time.monotonic()
    generator = (f"wrk ({args.concurrency} connections, Lua scripts)" if wrk else
                 f"Python client ({args.processes} processes, {args.concurrency} keep-alive connections)")
    print(f"compare: {args.workers} worker(s) under {args.http_server}; the client's ID tokens {args.id_token_alg}; "
          f"{placement.description}; load generator: {generator} "
          f"(the sign-in: the Python client); {args.duration:g} s per endpoint after {args.warmup:g} s warm-up; "
          f"nproc {os.cpu_count()}, load average {load_start:.2f} at start", flush=True)

    with tempfile.TemporaryDirectory(prefix="idp-compare-") as tmp, \
            LiveProvider(Path(tmp) / "provider", name="compare", tls=False, log_level="INFO") as provider:
        bench = Bench(args, placement, wrk, Path(tmp))
        try:
            provider.setup()
            progress("PostgreSQL database and Redis prefix ready, `idp setup` done")
            provider.env["IDP_POLICIES_DIR"] = str(benchmark_policies(Path(tmp) / "policies"))
            per_run = MAX_SIGN_INS_PER_SECOND_PER_WORKER * args.workers * (args.warmup + args.duration)
            # each person can sign in twice per TOTP step (that step's code and the next one's)
            people = make_people(provider, RESERVED_PEOPLE + max(2 * args.concurrency, math.ceil(per_run / 2)))
            created = provider.create_client("bench", redirect_uris=[REDIRECT_URI], grant_types=[
                "authorization_code", "refresh_token", "client_credentials"],
                extra=["--id-token-alg", args.id_token_alg])
            client = {**created, "redirect_uri": REDIRECT_URI}
            # the app this process built (people, round trips) logs like the server: keep the output readable
            logging.getLogger().setLevel(logging.WARNING)
            # two runs (warm-up, measured), each a wrk queue's worth or 4 per Python client connection
            pool_size = 2 * max(refresh_tokens_needed(args.concurrency, placement.load_cpus), 4 * args.concurrency)
            pool = provider.mint_refresh_tokens(client["client_id"], people[0]["email"], pool_size + 2, SCOPE)
            counted_tokens = [pool.pop(), pool.pop()]  # for round_trips: never handed to the load
            progress(f"{len(people)} people with an authenticator app, a client, {len(pool)} refresh tokens")
        except ProviderError as exc:
            print(f"compare: {exc}", file=sys.stderr)
            return 2
        env = base_env()
        try:
            run_node(bench, provider, env)
            run_ceiling(bench, env)
            session = run_provider(bench, provider, {**env, **provider.env}, people, client, pool)
        except RuntimeError as exc:
            print(f"compare: {exc}", file=sys.stderr)
            return 1
        argon2 = argon2_ceiling(args.argon2_seconds, placement.server_cpus)
        trips = round_trips(provider, client, people, counted_tokens)
        progress("round trips per request counted")
        versions = {**node_versions(), "wrk": (report._run([wrk, "-v"]).splitlines() or [None])[0] if wrk else None,
                    **service_versions(provider)}

    rows = bench.rows
    report.add_ratios(rows, argon2["per_second"])
    print()
    report.print_table(rows, argon2)
    report.print_footprint(session, trips)
    print("notes: " + "; ".join([placement.description] + NOTES))
    machine = {**report.machine_info(versions), "usable_cpus": usable_cpus, "load_average_start": round(load_start, 2),
               "load_average_end": round(os.getloadavg()[0], 2)}
    result = {
        "schema": 1, "date": started.isoformat(timespec="seconds"), "command": ["python", *sys.argv],
        "wall_seconds": round(time.monotonic() - t_start, 1), "machine": machine,
        "settings": {"id_token_alg": args.id_token_alg, "http_server": args.http_server, "workers": args.workers,
                     "threads": args.threads, "concurrency": args.concurrency,
                     "duration": args.duration, "warmup": args.warmup, "smoke": args.smoke,
                     "generator": "wrk" if wrk else "python", "pinning": {
                         "server_cpus": placement.server_cpus, "load_cpus": placement.load_cpus,
                         "description": placement.description}},
        "notes": NOTES, "results": rows, "argon2": argon2, "session_state": session,
        "round_trips_per_request": trips,
    }
    print(f"\ntotal wall time {result['wall_seconds']:.0f} s; git {machine['git_commit']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.compare:
        report.print_comparison(result, args.compare)
    return 1 if any(r["errors"] for r in rows) else 0


def service_versions(provider) -> dict:
    import redis
    from sqlalchemy import create_engine, text

    from tests.live_provider import redis_url

    engine = create_engine(provider.database_url)
    try:
        with engine.connect() as conn:
            postgres = conn.scalar(text("SHOW server_version"))
    finally:
        engine.dispose()
    r = redis.Redis.from_url(redis_url())
    try:
        return {"postgresql": postgres, "redis": r.info("server")["redis_version"]}
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
