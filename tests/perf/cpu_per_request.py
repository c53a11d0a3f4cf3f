"""CPU time per request, endpoint by endpoint, of this checkout and (optionally) another one, in
one run, alternating (not a test). The app is called through WSGI in one process, as
profile_endpoints.py does: no HTTP server and no load generator, so what is measured is the
provider's own work. CPU time of the process (time.process_time) rather than the wall clock: a
busy machine slows both equally and the figure moves much less than a rate does. The best of
several rounds is kept.

    python tests/perf/cpu_per_request.py                              # this checkout
    git worktree add /tmp/before <commit>
    python tests/perf/cpu_per_request.py --other /tmp/before --rounds 3   # before and after, side by side

Needs PostgreSQL + Redis as compare.py does. Each checkout is imported in a process of its own
(PYTHONPATH), with this file's request builders (profile_endpoints.py of this checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENDPOINTS = ("client_credentials", "introspection", "jwks", "discovery", "userinfo", "refresh_token")


def measure(endpoints: list[str], calls: int) -> dict:
    """In this process: CPU microseconds per call of each endpoint (best of three slices)."""
    import logging

    sys.path.insert(0, str(HERE))
    import profile_endpoints as pe

    if os.environ.get("PYTHONPATH"):  # the checkout measured, ahead of the one profile_endpoints names
        sys.path.insert(0, os.environ["PYTHONPATH"])
    assert "idp" not in sys.modules
    from werkzeug.test import EnvironBuilder

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        app, admin, name = pe.build(Path(tmp))
        try:
            make = pe.requests_for(app)

            def environ(endpoint):
                method, path, headers, form = make[endpoint]()
                return EnvironBuilder(path=path, method=method, headers={**headers, "Host": "localhost"},
                                      data=form).get_environ()

            def call(env):
                status = []
                for _ in app(env, lambda s, h, e=None: status.append(s)):
                    pass
                return status[0]

            for endpoint in endpoints:
                for _ in range(50):  # warm caches and connections; every answer checked
                    assert call(environ(endpoint)).startswith("200"), endpoint
                envs = [environ(endpoint) for _ in range(calls)]  # built before timing
                slices, size = [], calls // 3
                for part in range(3):
                    started = time.process_time()
                    for env in envs[part * size:(part + 1) * size]:
                        call(env)
                    slices.append((time.process_time() - started) / size * 1e6)
                results[endpoint] = min(slices)
        finally:
            logging.shutdown()
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return results


def run_checkout(root: Path, endpoints: list[str], calls: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, "--child", ",".join(endpoints), "--calls", str(calls)],
                         env=env, cwd=root, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{root}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, help="another checkout to measure beside this one (e.g. the before)")
    parser.add_argument("--endpoint", choices=ENDPOINTS, action="append")
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the checkouts; the best is kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child.split(","), args.calls)))
        return 0
    endpoints = args.endpoint or list(ENDPOINTS)
    roots = {"this": HERE.parents[1]} | ({"other": args.other.resolve()} if args.other else {})
    best: dict[str, dict] = {name: {} for name in roots}
    for _ in range(args.rounds):
        for name, root in roots.items():
            for endpoint, micros in run_checkout(root, endpoints, args.calls).items():
                best[name][endpoint] = min(micros, best[name].get(endpoint, micros))
    header = f"{'endpoint':<20}{'this µs':>10}" + (f"{'other µs':>10}{'other÷this':>12}" if args.other else "")
    print(header)
    for endpoint in endpoints:
        line = f"{endpoint:<20}{best['this'][endpoint]:>10.0f}"
        if args.other:
            line += f"{best['other'][endpoint]:>10.0f}{best['other'][endpoint] / best['this'][endpoint]:>11.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
