"""The benchmark's two load generators (used by compare.py; not a test).

- ``run_wrk``: wrk with a Lua script written for the request (and, for refresh-token rotation, a
  script that chains the token each response hands back). Used wherever one request is the unit.
- ``run_python``: processes x threads, one keep-alive ``http.client`` connection per thread, each
  thread running a *flow* (``Fixed``, ``RefreshChain``, or the scripted sign-in in signin.py) for a
  fixed time. Used for the sign-in, and for everything when wrk is absent.

Both return the same figures: ``count`` (units measured), ``seconds``, ``p50_ms``/``p99_ms`` (per
unit), ``errors`` (non-2xx answers, socket errors, failed checks) with a few ``samples``, and
``client_cpu`` (CPU seconds the load generator used while measuring).
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import threading
import time
from array import array
from pathlib import Path


def percentile(ordered, p: float) -> float:
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def pin_prefix(cpus: list[int] | None) -> list[str]:
    """`taskset -c LIST` to start a program on those cores (nothing when unpinned)."""
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


# ======================================================================== a keep-alive connection
class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port that reopens itself when the server
    closed it (or a request failed)."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port, self.timeout = port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, headers: dict, body: str | bytes | None = None):
        """(status, {lower-case header: [values]}, body bytes)."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self._conn.request(method, path, body=body, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        found: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            found.setdefault(name.lower(), []).append(value)
        if response.will_close:
            self.close()
        return response.status, found, data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# ======================================================================== flows (Python client)
class Fixed:
    """The same request every time; a 2xx answer is a success."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def runner(self, index: int):
        spec = self.spec

        def once(conn: Connection) -> str | None:
            status, _, data = conn.request(spec["method"], spec["path"], spec["headers"], spec.get("body"))
            return None if 200 <= status < 300 else f"HTTP {status}: {data[:300]!r}"

        return once


class RefreshChain:
    """Refresh-token rotation: each thread sends the refresh token it got back last time. A thread
    starts with its own token; when one fails (or a connection breaks mid-request, so the token may
    have been rotated already) it takes one of its spares rather than replay it."""

    def __init__(self, spec: dict, tokens_per_thread: list[list[str]]) -> None:
        self.spec, self.tokens_per_thread = spec, tokens_per_thread

    def runner(self, index: int):
        spec, queue = self.spec, list(self.tokens_per_thread[index])
        held: list[str] = []

        def once(conn: Connection) -> str | None:
            if not held:
                if not queue:
                    raise LookupError("no refresh token left for this connection")
                held.append(queue.pop(0))
            token = held.pop()  # dropped unless a rotated one comes back
            body = spec["body_template"].replace("{token}", token)
            status, _, data = conn.request(spec["method"], spec["path"], spec["headers"], body)
            if status != 200:
                return f"HTTP {status}: {data[:300]!r}"
            try:
                held.append(json.loads(data)["refresh_token"])
            except (ValueError, KeyError):
                return f"no refresh_token in {data[:300]!r}"
            return None

        return once


def _python_worker(port, flow, indices, duration, cpus, barrier, results):
    """One process: a thread per index, each with its own connection, all starting together."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    lock = threading.Lock()
    out = {"count": 0, "errors": 0, "latencies": array("d"), "samples": []}
    ready = threading.Barrier(len(indices) + 1)

    def run(index: int) -> None:
        once, conn = flow.runner(index), Connection(port)
        latencies, count, errors, samples = array("d"), 0, 0, []
        ready.wait()
        stop_at = time.monotonic() + duration
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                problem = once(conn)
            except LookupError as exc:  # the flow ran out of what it needs: stop this thread
                errors, problem = errors + 1, str(exc)
                samples.append(problem)
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                problem = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - t0
            count += 1
            latencies.append(elapsed)
            if problem:
                errors += 1
                if len(samples) < 3:
                    samples.append(problem)
        conn.close()
        with lock:
            out["count"] += count
            out["errors"] += errors
            out["latencies"].extend(latencies)
            out["samples"].extend(samples)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in indices]
    for t in threads:
        t.start()
    barrier.wait()  # every process starts together
    ready.wait()
    cpu0 = time.process_time()
    for t in threads:
        t.join()
    out["cpu"] = time.process_time() - cpu0
    out["latencies"] = out["latencies"].tobytes()
    results.put(out)


def run_python(port: int, flow, concurrency: int, processes: int, duration: float,
               cpus: list[int] | None) -> dict:
    ctx = mp.get_context("spawn")
    processes = max(1, min(processes, concurrency))
    groups = [list(range(concurrency))[i::processes] for i in range(processes)]
    barrier, results = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_python_worker, daemon=True,
                         args=(port, flow, group, duration, cpus, barrier, results))
             for group in groups]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    collected = [results.get(timeout=duration + 180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    latencies = array("d")
    merged = {"count": 0, "errors": 0, "samples": [], "client_cpu": 0.0}
    for part in collected:
        merged["count"] += part["count"]
        merged["errors"] += part["errors"]
        merged["samples"].extend(part["samples"])
        merged["client_cpu"] += part["cpu"]
        chunk = array("d")
        chunk.frombytes(part["latencies"])
        latencies.extend(chunk)
    ordered = sorted(latencies)
    merged.update(p50_ms=percentile(ordered, 50) * 1000, p99_ms=percentile(ordered, 99) * 1000,
                  seconds=duration)
    merged["samples"] = merged["samples"][:5]
    return merged


# ======================================================================== wrk
def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


# wrk's own error counts: HTTP status >= 400, and socket errors (connect, read, write, timeout).
# 1xx/3xx answers would pass unnoticed; none is expected from these endpoints, and compare.py checks
# each endpoint's answer once before timing it. (Counting them would need a response() callback on
# every script, which makes wrk hand every response to Lua: a cost on the load generator.)
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
    headers = {k: v for k, v in spec["headers"].items() if k != "Host"}  # wrk sends its own Host
    if "body_template" not in spec:
        lines = [f"wrk.method = {_lua_string(spec['method'])}", f"wrk.path = {_lua_string(spec['path'])}"]
        if spec.get("body") is not None:
            lines.append(f"wrk.body = {_lua_string(spec['body'])}")
        lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
        return "\n".join(lines) + DONE_LUA
    # Refresh-token rotation: every wrk thread has its own Lua state and its own queue of tokens;
    # response() puts the rotated token back for the next request on any of its connections.
    groups = [tokens[i * per_thread:(i + 1) * per_thread] for i in range(wrk_threads)]
    pool = "{" + ", ".join("{" + ", ".join(_lua_string(t) for t in g) + "}" for g in groups) + "}"
    lua_headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}"
    prefix, suffix = spec["body_template"].split("{token}")
    lines = [
        f"local POOL = {pool}",
        f"local HEADERS = {lua_headers}",
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


def wrk_threads_for(concurrency: int, cpus: list[int] | None) -> int:
    return max(1, min(len(cpus) if cpus else (os.cpu_count() or 1), 4, concurrency))


def refresh_tokens_needed(concurrency: int, cpus: list[int] | None) -> int:
    """Refresh tokens one chained wrk run needs: a queue per wrk thread, one per connection and spares."""
    threads = wrk_threads_for(concurrency, cpus)
    return threads * (math.ceil(concurrency / threads) + 2)


def run_wrk(wrk: str, base: str, spec: dict, tokens: list[str], concurrency: int, cpus: list[int] | None,
            seconds: float, workdir: Path, name: str) -> dict:
    threads = wrk_threads_for(concurrency, cpus)
    per_thread = math.ceil(concurrency / threads) + 2
    if "body_template" in spec and len(tokens) < threads * per_thread:
        raise RuntimeError(f"refresh pool too small for wrk: {len(tokens)} < {threads * per_thread}")
    script = workdir / f"{name}.lua"
    script.write_text(wrk_script(spec, tokens, threads, per_thread))
    cmd = pin_prefix(cpus) + [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
                              "--timeout", "10s", "-s", str(script), base + spec["path"]]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = [line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    stats = json.loads(found[-1][len("WRKJSON "):])
    errors = stats["status_errors"] + stats["connect"] + stats["read"] + stats["write"] + stats["timeout"]
    samples = [f"wrk: {k} {stats[k]}" for k in ("status_errors", "connect", "read", "write", "timeout")
               if stats[k]]
    return {"count": stats["requests"], "errors": errors, "samples": samples,
            "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
            "seconds": stats["duration_us"] / 1e6,
            "client_cpu": (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)}
