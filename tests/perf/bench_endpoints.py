#!/usr/bin/env python3
"""Benchmark of the hot protocol endpoints on a production-like provider (a benchmark, not a test).

    python tests/perf/bench_endpoints.py [--workers N] [--threads T] [--duration S] [--client auto|wrk|python]

Sets up PostgreSQL + Redis exactly like tests/interop (a fresh database and Redis key prefix,
`idp setup`, a person and a confidential client), starts gunicorn with N gthread workers on plain
http on loopback, and measures requests/s and p50/p99 latency at a fixed concurrency for:

    jwks               GET  /jwks.json
    client_credentials POST /token  grant_type=client_credentials, client_secret_basic
    introspection      POST /introspect  a person's access token, client_secret_basic
    userinfo           GET  /userinfo  Bearer access token
    refresh_token      POST /token  grant_type=refresh_token, rotation: every connection chains the
                       refresh token it gets back (the pool is minted through idp.oidc.tokens)

Load generator: wrk with a Lua script when `wrk` is on PATH (--client auto), else a Python client
(processes x threads, one keep-alive http.client connection per thread; no system package needed).
Everything is torn down at the end (gunicorn stopped, database dropped, Redis keys deleted).
PostgreSQL/Redis: IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL, else 127.0.0.1 defaults.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ENDPOINTS = ("jwks", "client_credentials", "introspection", "userinfo", "refresh_token")
PERSON_SCOPE = "openid profile email access offline_access"
REDIRECT_URI = "https://rp.bench.example/callback"
EMAIL = "eo.bench@centre.example"


# ======================================================================== request specs
def build_specs(client_id: str, client_secret: str, access_token: str, host: str) -> dict:
    basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic, "Host": host,
            "Accept": "application/json"}
    get = {"Host": host, "Accept": "application/json"}
    return {
        "jwks": {"method": "GET", "path": "/jwks.json", "headers": get, "body": None},
        "client_credentials": {"method": "POST", "path": "/token", "headers": form,
                               "body": "grant_type=client_credentials"},
        "introspection": {"method": "POST", "path": "/introspect", "headers": form,
                          "body": urlencode({"token": access_token, "token_type_hint": "access_token"})},
        "userinfo": {"method": "GET", "path": "/userinfo",
                     "headers": {**get, "Authorization": f"Bearer {access_token}"}, "body": None},
        # no `scope`: like most relying parties, ask for the scope originally granted
        "refresh_token": {"method": "POST", "path": "/token", "headers": form,
                          "body_template": "grant_type=refresh_token&refresh_token={token}", "chain": True},
    }


def refresh_body(spec: dict, token: str) -> str:
    return spec["body_template"].replace("{token}", token)


# ======================================================================== python load generator
def _python_worker(port, spec, tokens, threads, warmup, duration, barrier, results):
    """One process: `threads` threads, each with its own keep-alive connection."""
    lock = threading.Lock()
    out = {"count": 0, "errors": 0, "statuses": Counter(), "latencies": array("d"), "samples": [],
           "exceptions": 0}
    spare = list(tokens[threads:])

    def run(index: int, ready: threading.Barrier):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = tokens[index] if spec.get("chain") else None
        lat, count, errors, statuses, samples, exceptions = array("d"), 0, 0, Counter(), [], 0
        ready.wait()
        start = time.monotonic()
        measure_from, stop_at = start + warmup, start + warmup + duration
        while True:
            now = time.monotonic()
            if now >= stop_at:
                break
            if spec.get("chain"):
                if token is None:
                    with lock:
                        token = spare.pop() if spare else None
                    if token is None:
                        errors += 1
                        break
                body = refresh_body(spec, token)
            else:
                body = spec["body"]
            t0 = time.perf_counter()
            try:
                conn.request(spec["method"], spec["path"], body=body, headers=spec["headers"])
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                exceptions += 1
                if spec.get("chain"):
                    token = None  # it may have been rotated before the connection broke: never replay it
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}")
                if now >= measure_from:
                    errors += 1
                continue
            elapsed = time.perf_counter() - t0
            ok = status == 200
            if spec.get("chain"):
                token = None
                if ok:
                    try:
                        token = json.loads(data)["refresh_token"]
                    except (ValueError, KeyError):
                        ok = False
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if t0 < measure_from:
                continue  # warm-up
            count += 1
            statuses[status] += 1
            lat.append(elapsed)
            if not ok:
                errors += 1
                if len(samples) < 3:
                    samples.append(f"HTTP {status}: {data[:300]!r}")
        conn.close()
        with lock:
            out["count"] += count
            out["errors"] += errors
            out["exceptions"] += exceptions
            out["statuses"].update(statuses)
            out["latencies"].extend(lat)
            out["samples"].extend(samples)

    ready = threading.Barrier(threads + 1)
    workers = [threading.Thread(target=run, args=(i, ready), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()  # every process and thread starts together
    ready.wait()
    cpu0 = time.process_time()
    for w in workers:
        w.join()
    out["cpu"] = time.process_time() - cpu0
    out["latencies"] = out["latencies"].tobytes()
    results.put(out)


def run_python(port, spec, tokens, concurrency, processes, warmup, duration) -> dict:
    ctx = mp.get_context("spawn")
    processes = max(1, min(processes, concurrency))
    per = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    barrier, results = ctx.Barrier(processes + 1), ctx.Queue()
    procs, offset = [], 0
    spare_per = max(1, (len(tokens) - concurrency) // processes) if tokens else 0
    spares_at = concurrency
    for n in per:
        mine = []
        if tokens:
            mine = tokens[offset:offset + n] + tokens[spares_at:spares_at + spare_per]
            spares_at += spare_per
        offset += n
        procs.append(ctx.Process(target=_python_worker,
                                 args=(port, spec, mine, n, warmup, duration, barrier, results), daemon=True))
    for p in procs:
        p.start()
    barrier.wait(timeout=60)
    collected = [results.get(timeout=warmup + duration + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    latencies = array("d")
    merged = {"count": 0, "errors": 0, "statuses": Counter(), "samples": [], "client_cpu": 0.0,
              "exceptions": 0}
    for part in collected:
        merged["count"] += part["count"]
        merged["errors"] += part["errors"]
        merged["exceptions"] += part["exceptions"]
        merged["statuses"].update(part["statuses"])
        merged["samples"].extend(part["samples"])
        merged["client_cpu"] += part["cpu"]
        chunk = array("d")
        chunk.frombytes(part["latencies"])
        latencies.extend(chunk)
    ordered = sorted(latencies)
    merged["p50_ms"] = percentile(ordered, 50) * 1000
    merged["p99_ms"] = percentile(ordered, 99) * 1000
    merged["seconds"] = duration
    return merged


def percentile(ordered, p: float) -> float:
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


# ======================================================================== wrk load generator
def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


DONE_LUA = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"status_errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
'''


def wrk_script(spec: dict, tokens: list[str], wrk_threads: int, per_thread: int) -> str:
    lines = []
    headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec["headers"].items()
                              if k != "Host") + "}"
    if not spec.get("chain"):
        lines += [f"wrk.method = {_lua_string(spec['method'])}", f"wrk.path = {_lua_string(spec['path'])}"]
        if spec["body"] is not None:
            lines.append(f"wrk.body = {_lua_string(spec['body'])}")
        for k, v in spec["headers"].items():
            if k != "Host":
                lines.append(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}")
        return "\n".join(lines) + DONE_LUA
    # Refresh-token rotation: every wrk thread has its own Lua state and its own queue of tokens;
    # response() puts the rotated token back for the next request on any of its connections.
    groups = [tokens[i * per_thread:(i + 1) * per_thread] for i in range(wrk_threads)]
    pool = "{" + ", ".join("{" + ", ".join(_lua_string(t) for t in g) + "}" for g in groups) + "}"
    prefix, suffix = spec["body_template"].split("{token}")
    lines += [
        f"local POOL = {pool}",
        f"local HEADERS = {headers}",
        f"local PREFIX, SUFFIX = {_lua_string(prefix)}, {_lua_string(suffix)}",
        "local next_id = 1",
        "setup = function(thread) thread:set('tid', next_id); next_id = next_id + 1 end",
        "init = function(args) queue = {}; for _, t in ipairs(POOL[tid]) do table.insert(queue, t) end end",
        "request = function()",
        "  local t = table.remove(queue, 1) or 'exhausted'",
        f"  return wrk.format('POST', {_lua_string(spec['path'])}, HEADERS, PREFIX .. t .. SUFFIX)",
        "end",
        "response = function(status, headers, body)",
        "  if status == 200 then",
        "    local rt = string.match(body, '\"refresh_token\"%s*:%s*\"([^\"]+)\"')",
        "    if rt then table.insert(queue, rt) end",
        "  end",
        "end",
    ]
    return "\n".join(lines) + DONE_LUA


def run_wrk(wrk: str, base: str, spec: dict, tokens: list[str], concurrency: int, wrk_threads: int,
            warmup: float, duration: float, workdir: Path, name: str) -> dict:
    wrk_threads = max(1, min(wrk_threads, concurrency))
    per_thread = math.ceil(concurrency / wrk_threads) + 2

    def once(seconds: float, pool: list[str]) -> dict:
        script = workdir / f"{name}.lua"
        script.write_text(wrk_script(spec, pool, wrk_threads, per_thread))
        cmd = [wrk, "-t", str(wrk_threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), base + spec["path"]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        found = [line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")]
        if done.returncode != 0 or not found:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return json.loads(found[-1][len("WRKJSON "):])

    need = wrk_threads * per_thread
    if spec.get("chain") and len(tokens) < 2 * need:
        raise RuntimeError(f"refresh pool too small for wrk: {len(tokens)} < {2 * need}")
    if warmup > 0:
        once(warmup, tokens[need:2 * need] if spec.get("chain") else [])
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = once(duration, tokens[:need] if spec.get("chain") else [])
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    errors = stats["status_errors"] + stats["connect"] + stats["read"] + stats["write"] + stats["timeout"]
    return {"count": stats["requests"], "errors": errors, "statuses": Counter(), "samples": [],
            "exceptions": 0, "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
            "seconds": stats["duration_us"] / 1e6,
            "client_cpu": (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)}


# ======================================================================== server CPU (Linux /proc)
def _proc_tree(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                pids += kids
                frontier += kids
        except OSError:
            pass
    return pids


def measure_bare_flask(args, use_wrk, wrk, wrk_threads, processes, workdir: Path) -> float:
    """req/s of tests/perf/bare_flask.py under the same gunicorn settings and load generator."""
    from tests.live_provider import base_env, free_port

    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", "gthread", "--threads",
           str(args.threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "bare_flask:app"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent, env=base_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    spec = {"method": "GET", "path": "/", "headers": {"Host": f"localhost:{port}"}, "body": None}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(port, spec)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn bare_flask:app did not start (exit {proc.poll()})")
            time.sleep(0.1)
        if use_wrk:
            res = run_wrk(wrk, f"http://127.0.0.1:{port}", spec, [], args.concurrency, wrk_threads, args.warmup,
                          args.duration, workdir, "bare_flask")
        else:
            res = run_python(port, spec, [], args.concurrency, processes, args.warmup, args.duration)
        return res["count"] / res["seconds"] if res["seconds"] else 0.0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def server_cpu_seconds(root: int) -> float | None:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        for pid in _proc_tree(root):
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    except (OSError, IndexError, ValueError):
        return None
    return total


# ======================================================================== set-up
def mint_refresh_tokens(provider, client_id: str, count: int) -> list[str]:
    """Refresh tokens for the person, each its own grant, stored exactly as the token endpoint would."""
    from idp import secrets
    from idp.accounts.models import Account
    from idp.extensions import db
    from idp.oidc import claims, tokens
    from idp.oidc.clients import get as get_client

    minted = []
    with provider.app().app_context():
        account = db.session.query(Account).filter_by(email=EMAIL).one()
        client = get_client(client_id)
        now = int(time.time())
        for _ in range(count):
            principal = tokens.Principal(account=account, auth_time=now, amr=["pwd"], acr=claims.ACR_PASSWORD,
                                         sid=None, grant_id=secrets.token(16))
            value = secrets.token(32)
            tokens.save_refresh_token(value, client, principal, PERSON_SCOPE)
            minted.append(value)
        db.session.commit()
    return minted


def call(port: int, spec: dict, body=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(spec["method"], spec["path"], body=body if body is not None else spec.get("body"),
                     headers=spec["headers"])
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def preflight(port: int, specs: dict, refresh_token: str, sub: str, client_id: str) -> None:
    """One request per endpoint, checked, so a broken endpoint stops the run instead of being timed."""
    checks = {
        "jwks": lambda d: len(d["keys"]) >= 1,
        "client_credentials": lambda d: d["token_type"].lower() == "bearer" and "refresh_token" not in d,
        "introspection": lambda d: d["active"] is True and d["sub"] == sub and d["client_id"] == client_id,
        "userinfo": lambda d: d["sub"] == sub,
        "refresh_token": lambda d: d["refresh_token"] != refresh_token and "id_token" in d,
    }
    for name, spec in specs.items():
        body = refresh_body(spec, refresh_token) if spec.get("chain") else None
        status, data = call(port, spec, body)
        try:
            ok = status == 200 and checks[name](json.loads(data))
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise RuntimeError(f"preflight {name}: HTTP {status}: {data[:500]!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker (default 4)")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections (default 16)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per endpoint (default 8)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (default 1)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if on PATH (auto), or the built-in Python client")
    parser.add_argument("--processes", type=int, default=0,
                        help="Python client processes (default: min(4, concurrency))")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="comma-separated subset, in order")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="provider log level (default INFO: one JSON line per request, as in production)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the bare-Flask reference measured first (tests/perf/bare_flask.py)")
    args = parser.parse_args(argv)

    chosen = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = [e for e in chosen if e not in ENDPOINTS]
    if unknown:
        parser.error(f"unknown endpoint(s) {unknown}; choose from {', '.join(ENDPOINTS)}")
    wrk = shutil.which("wrk")
    if args.client == "wrk" and not wrk:
        parser.error("--client wrk: wrk is not on PATH")
    use_wrk = wrk is not None and args.client in ("auto", "wrk")
    processes = args.processes or min(4, args.concurrency)
    wrk_threads = min(os.cpu_count() or 1, 4)

    from tests.live_provider import LiveProvider, ProviderError
    from tests.support import PASSWORD

    t_start = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp, \
            LiveProvider(Path(tmp) / "provider", name="bench", tls=False, log_level=args.log_level) as provider:
        try:
            provider.setup()
            person = provider.make_account(email=EMAIL, password=PASSWORD, role="eo", centre="12345")
            rp = provider.create_client("bench", redirect_uris=[REDIRECT_URI],
                                        grant_types=["authorization_code", "refresh_token", "client_credentials"])
            pool_size = 4 * args.concurrency + 16 if use_wrk else 2 * args.concurrency + 1
            pool = mint_refresh_tokens(provider, rp["client_id"], pool_size + 2)
            provider.start(workers=args.workers, threads=args.threads)
        except ProviderError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
        host = f"localhost:{provider.port}"
        specs = build_specs(rp["client_id"], rp["client_secret"], "", host)
        # a person's access token, from the real token endpoint
        status, data = call(provider.port, specs["refresh_token"], refresh_body(specs["refresh_token"], pool.pop()))
        if status != 200:
            print(f"bench: could not get an access token (HTTP {status}): {data[:500]!r}\n{provider.log_tail()}",
                  file=sys.stderr)
            return 1
        access_token = json.loads(data)["access_token"]
        specs = build_specs(rp["client_id"], rp["client_secret"], access_token, host)
        try:
            preflight(provider.port, specs, pool.pop(), person["sub"], rp["client_id"])
        except RuntimeError as exc:
            print(f"bench: {exc}\n{provider.log_tail()}", file=sys.stderr)
            return 1

        generator = (f"wrk ({wrk_threads} threads, {args.concurrency} connections, Lua scripts)" if use_wrk else
                     f"python ({processes} processes x threads, {args.concurrency} keep-alive "
                     "http.client connections)")
        print(f"idp endpoint benchmark: gunicorn {args.workers} worker(s) x {args.threads} threads (gthread), "
              f"PostgreSQL + Redis, plain http on loopback", flush=True)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"host: {platform.node()}, nproc {os.cpu_count()}, load average {load:.2f} at start, "
              f"Python {platform.python_version()}; "
              f"load generator: {generator}; {args.duration:g} s per endpoint after {args.warmup:g} s "
              f"warm-up; log level {args.log_level}", flush=True)

        reference = None
        if args.reference:
            try:
                reference = measure_bare_flask(args, use_wrk, wrk, wrk_threads, processes, Path(tmp))
            except (RuntimeError, OSError) as exc:
                print(f"bench: the bare-Flask reference failed: {exc}", file=sys.stderr)
                return 1
            print(f"  bare Flask reference: {reference:.0f} req/s", file=sys.stderr, flush=True)

        for name in chosen:
            spec = specs[name]
            tokens = pool if spec.get("chain") else []
            cpu0 = server_cpu_seconds(provider.proc.pid)
            if use_wrk:
                res = run_wrk(wrk, provider.base, spec, tokens, args.concurrency, wrk_threads, args.warmup,
                              args.duration, Path(tmp), name)
            else:
                res = run_python(provider.port, spec, tokens, args.concurrency, processes, args.warmup,
                                 args.duration)
            cpu1 = server_cpu_seconds(provider.proc.pid)
            # the server's CPU is sampled around warm-up + measurement; scale to the whole window
            window = args.warmup + args.duration
            res["server_cores"] = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / window
            res["client_cores"] = res["client_cpu"] / (res["seconds"] if use_wrk else args.duration)
            res["rps"] = res["count"] / res["seconds"] if res["seconds"] else 0.0
            res["endpoint"] = name
            rows.append(res)
            if spec.get("chain") and not use_wrk:
                pool = pool[2 * args.concurrency:]  # used (rotated) tokens are never reused
            print(f"  {name}: {res['rps']:.0f} req/s", file=sys.stderr, flush=True)

        if "Traceback" in provider.log_tail(5_000_000):
            print("bench: WARNING: the provider logged a traceback; see below\n" + provider.log_tail(3000),
                  file=sys.stderr)

    print()
    header = (f"{'endpoint':<20}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
              f"{'server CPU':>12}{'client CPU':>12}{'vs bare Flask':>15}")
    print(header)
    print("-" * len(header))
    for r in rows:
        server = "-" if r["server_cores"] is None else f"{r['server_cores']:.2f} cores"
        versus = f"{100 * r['rps'] / reference:.0f}%" if reference else "-"
        print(f"{r['endpoint']:<20}{r['count']:>10}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
              f"{r['errors']:>8}{server:>12}{r['client_cores']:>7.2f} cores{versus:>15}")
    if reference:
        print(f"bare Flask reference (same gunicorn settings and load generator, GET /): {reference:.0f} req/s")
    for r in rows:
        if r["errors"] or r["samples"]:
            print(f"{r['endpoint']}: {r['errors']} errors; statuses {dict(r['statuses'])}; "
                  f"samples {r['samples'][:3]}")
    print(f"\ntotal wall time {time.monotonic() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "workers": args.workers, "threads": args.threads, "concurrency": args.concurrency,
            "duration": args.duration, "nproc": os.cpu_count(), "client": "wrk" if use_wrk else "python",
            "bare_flask_rps": reference,
            "results": [{k: (dict(v) if isinstance(v, Counter) else v) for k, v in r.items()} for r in rows],
        }, indent=2))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
