"""The benchmark's figures: ratios, the table, machine facts, and the comparison of two runs
(used by compare.py; not a test)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


RATIO_FIGURES = ("rate", "per_cpu_second", "p50_ms", "p99_ms")


def add_ratios(rows: list[dict], argon2_per_second: float | None) -> None:
    """Each row's figures as a ratio to node's same endpoint and to the ceiling (the bare framework's
    hello; for the sign-in, argon2id verifications per second in one process, a per-core figure)."""
    node = {r["endpoint"]: r for r in rows if r["server"] == "node"}
    hello = next((r for r in rows if r["server"] == "ceiling"), None)
    for row in rows:
        other = node.get(row["endpoint"]) if row["server"] == "idp" else None
        row["vs_node"] = None if other is None else {k: _ratio(row[k], other[k]) for k in RATIO_FIGURES}
        if row["endpoint"] == "sign_in":
            row["vs_ceiling"] = {"ceiling": "argon2id verifications/s, one process",
                                 "rate": _ratio(row["rate"], argon2_per_second),
                                 "per_cpu_second": _ratio(row["per_cpu_second"], argon2_per_second)}
        elif row["server"] == "ceiling" or hello is None:
            row["vs_ceiling"] = None
        else:
            row["vs_ceiling"] = {"ceiling": "bare Flask hello", **{k: _ratio(row[k], hello[k]) for k in RATIO_FIGURES}}


def _x(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(rows: list[dict], argon2: dict | None) -> None:
    header = (f"{'server':<8}{'endpoint':<19}{'rate':>8} {'unit':<11}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
              f"{'RSS MiB':>9}{'CPU':>6}{'per CPU-s':>10}{'÷node':>7}{'÷node/CPU':>10}{'÷ceiling':>9}"
              f"{'÷ceil/CPU':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        rss = "/".join(f"{k / 1024:.0f}" for k in r["rss_kib_per_worker"]) or "-"
        cpu = "-" if r["server_cpu_cores"] is None else f"{r['server_cpu_cores']:.2f}"
        per_cpu = "-" if r["per_cpu_second"] is None else f"{r['per_cpu_second']:.1f}"
        node, ceiling = r["vs_node"] or {}, r["vs_ceiling"] or {}
        print(f"{r['server']:<8}{r['endpoint']:<19}{r['rate']:>8.1f} {r['unit']:<11}{r['p50_ms']:>8.2f}"
              f"{r['p99_ms']:>8.2f}{r['errors']:>7}{rss:>9}{cpu:>6}{per_cpu:>10}{_x(node.get('rate')):>7}"
              f"{_x(node.get('per_cpu_second')):>10}{_x(ceiling.get('rate')):>9}"
              f"{_x(ceiling.get('per_cpu_second')):>10}")
    if argon2:
        print(f"argon2id ceiling: {argon2['per_second']:.1f} verifications/s in one process "
              f"(m={argon2['memory_kib']} KiB, t={argon2['time_cost']}, p={argon2['parallelism']}, "
              f"the shipped parameters); sign_in's ÷ceiling is against it")
    for r in rows:
        if r["errors"] or r["error_samples"]:
            print(f"{r['server']} {r['endpoint']}: {r['errors']} errors, e.g. {r['error_samples'][:3]}")


def print_footprint(session: dict | None, round_trips: dict | None) -> None:
    if session:
        print(f"one sign-in leaves {len(session['redis_keys'])} Redis key(s), {session['redis_bytes']} bytes "
              f"(MEMORY USAGE): " + ", ".join(f"{k['kind']} {k['bytes']} B" for k in session["redis_keys"]))
        print(f"the SSO session's database row (sso_sessions, pg_column_size): {session['database_row_bytes']} bytes")
    if round_trips:
        print("per request, counted in-process (SQL statements / Redis round trips): " + ", ".join(
            f"{name} {c['sql']}/{c['redis']}" + (f" over {c['requests']} requests" if c["requests"] > 1 else "")
            for name, c in round_trips.items()))


def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()


def machine_info(extra: dict) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def package(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    status = _run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": os.cpu_count(), "cpu_model": model,
        "kernel": platform.release(), "memory_kib": _meminfo(),
        "git_commit": _run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]) or None,
        "git_dirty": bool(status),
        "versions": {"python": platform.python_version(), "gunicorn": package("gunicorn"), "granian": package("granian"),
                     "flask": package("flask"), "authlib": package("authlib"),
                     "argon2-cffi": package("argon2-cffi"), **extra},
    }


def _meminfo() -> int | None:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def print_comparison(new: dict, old_path: str) -> None:
    """Each figure of this run over the same figure of an older run (JSON from --json)."""
    old = json.loads(Path(old_path).read_text())
    before = {(r["server"], r["endpoint"]): r for r in old["results"]}
    print(f"\nthis run / {old_path} ({old.get('date', '?')}, git {str(old['machine'].get('git_commit'))[:10]}, "
          f"load {old['machine'].get('load_average_start')}):")
    print(f"{'server':<8}{'endpoint':<20}{'old rate':>10}{'new rate':>10}{'rate':>8}{'per CPU-s':>10}{'p50':>8}"
          f"{'p99':>8}{'÷node old→new':>18}")
    for r in new["results"]:
        o = before.get((r["server"], r["endpoint"]))
        if o is None:
            continue
        vs = (f"{_x((o['vs_node'] or {}).get('rate'))}→{_x((r['vs_node'] or {}).get('rate'))}"
              if r["vs_node"] else "-")
        print(f"{r['server']:<8}{r['endpoint']:<20}{o['rate']:>10.1f}{r['rate']:>10.1f}"
              f"{_x(_ratio(r['rate'], o['rate'])):>8}{_x(_ratio(r['per_cpu_second'], o.get('per_cpu_second'))):>10}"
              f"{_x(_ratio(r['p50_ms'], o['p50_ms'])):>8}"
              f"{_x(_ratio(r['p99_ms'], o['p99_ms'])):>8}{vs:>18}")
