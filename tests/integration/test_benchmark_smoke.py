"""The benchmark never rots: `python tests/perf/compare.py --smoke` runs its whole pipeline (node
oidc-provider, the bare-Flask ceiling, the provider on PostgreSQL + Redis, every endpoint for about a
second on one connection, the argon2id ceiling, the footprint counts) and writes its JSON.

Asserts only that every endpoint answered, without errors, and that the JSON has every field the
README documents; never a speed (figures belong in tests/perf, read by people).

Needs node >= 20 and `npm ci --prefix tests/perf/node-reference` (CI installs it before pytest),
PostgreSQL and Redis (IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL, else the local defaults); without
them this test FAILS, never skips. Uses wrk where it is installed, else the benchmark's Python client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from idp import policy

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPARE = REPO_ROOT / "tests" / "perf" / "compare.py"

ENDPOINTS = {
    "node": {"client_credentials", "introspection", "jwks", "discovery"},
    "ceiling": {"hello"},
    "idp": {"client_credentials", "introspection", "jwks", "discovery", "userinfo", "refresh_token", "sign_in"},
}
ROW_FIELDS = {"server", "endpoint", "unit", "count", "seconds", "rate", "p50_ms", "p99_ms", "errors",
              "error_samples", "rss_kib_per_worker", "server_cpu_cores", "per_cpu_second", "client_cpu_cores", "generator",
              "vs_node", "vs_ceiling"}
MACHINE_FIELDS = {"nproc", "usable_cpus", "cpu_model", "kernel", "memory_kib", "git_commit", "git_dirty",
                  "versions", "load_average_start", "load_average_end"}
VERSIONS = {"python", "gunicorn", "flask", "authlib", "argon2-cffi", "node", "oidc-provider", "ioredis", "wrk",
            "postgresql", "redis"}


def test_compare_smoke_runs_every_endpoint_without_errors(tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    done = subprocess.run([sys.executable, str(COMPARE), "--smoke", "--json", str(out)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    context = f"compare.py exit {done.returncode}\nstdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, context
    result = json.loads(out.read_text())

    assert {"schema", "date", "command", "wall_seconds", "machine", "settings", "notes", "results", "argon2",
            "session_state", "round_trips_per_request"} <= set(result), context
    assert MACHINE_FIELDS <= set(result["machine"])
    assert VERSIONS <= set(result["machine"]["versions"])
    assert result["machine"]["versions"]["oidc-provider"].startswith("9."), result["machine"]["versions"]
    assert result["settings"]["smoke"] is True and result["settings"]["pinning"]["description"]

    found = {}
    for row in result["results"]:
        assert ROW_FIELDS <= set(row), row
        found.setdefault(row["server"], set()).add(row["endpoint"])
        assert row["count"] > 0 and row["errors"] == 0, row  # it answered, every time
        assert row["rss_kib_per_worker"], row
        if row["server"] == "idp" and row["endpoint"] in ENDPOINTS["node"]:
            assert row["vs_node"] is not None and row["vs_node"]["rate"] is not None, row
        if row["server"] != "ceiling":
            assert row["vs_ceiling"] is not None and row["vs_ceiling"]["rate"] is not None, row
    assert found == ENDPOINTS

    shipped = policy.load(None).sec("password")
    assert result["argon2"]["per_second"] > 0
    assert (result["argon2"]["memory_kib"], result["argon2"]["time_cost"], result["argon2"]["parallelism"]) == \
        (shipped.argon2_memory_kib, shipped.argon2_time_cost, shipped.argon2_parallelism)
    assert set(result["session_state"]) == {"redis_keys", "redis_bytes", "database_row_bytes"}
    assert result["session_state"]["database_row_bytes"] > 0
    assert set(result["round_trips_per_request"]) == ENDPOINTS["idp"]
    for counts in result["round_trips_per_request"].values():
        assert set(counts) == {"sql", "redis", "requests"}
