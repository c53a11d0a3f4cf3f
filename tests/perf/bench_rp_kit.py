#!/usr/bin/env python3
"""Benchmark of the relying-party kit (clients/rp): access-token validations per second on one core
with the JWKS cached (a benchmark, not a test; goal >= 5,000/s for ES256 and for RS256).

    python tests/perf/bench_rp_kit.py [--duration S]

For each access-token algorithm it starts a provider (SQLite, in-process store, fresh keys) served
over HTTP by a thread, gets a real access token through a full code flow, points
examboard_rp.ResourceServer at the live issuer, fetches the JWKS once, and then validates the
token in a loop on one thread:

    validate   the full check with the token cache off: signature, typ, iss, aud, exp/nbf/iat, claims
    authorize  the same from the Authorization header, plus a profile check (what @require_profile does)
    repeat     authorize with the token cache on (the default): the same token presented again

Validations per CPU-second is the per-core figure; the goal applies to validate and authorize.
Everything is torn down at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

EMAIL = "eo.bench@centre.example"


def start_provider(workdir: Path, alg: str):
    from idp import config, create_app, migrations
    from idp.extensions import make_engine
    from idp.oidc.keys import KeyFolder
    from tests.clients.live import ThreadedProvider, cheap_hashing_policies

    (workdir / "var").mkdir(parents=True)
    database = f"sqlite:///{workdir / 'var' / 'idp.sqlite3'}"
    engine = make_engine(database)
    migrations.upgrade(engine)
    engine.dispose()
    KeyFolder(workdir / "keys").ensure()

    def build(issuer: str):
        settings = config.load(None, env={}, server={"issuer": issuer, "data_dir": str(workdir / "var"),
                                                     "secret_key": os.urandom(24).hex()},
                               database={"url": database},
                               keys={"dir": str(workdir / "keys"), "access_token_alg": alg},
                               policies={"dir": str(cheap_hashing_policies(workdir))},
                               logging={"level": "WARNING", "format": "text"})
        return create_app(settings)

    return ThreadedProvider(build, keys_dir=workdir / "keys")


def measure(func, duration: float) -> tuple[int, float, float]:
    for _ in range(200):  # warm up
        func()
    count, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    deadline = wall0 + duration
    while True:
        for _ in range(500):
            func()
        count += 500
        if time.perf_counter() >= deadline:
            break
    return count, time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default 3)")
    args = parser.parse_args()

    import cryptography
    import joserfc
    from examboard_rp import ResourceServer

    print(f"examboard_rp kit benchmark: Python {platform.python_version()}, joserfc {joserfc.__version__}, "
          f"cryptography {cryptography.__version__}, {os.cpu_count()} CPUs, 1 thread, JWKS cached")
    print(f"{'alg':<6} {'operation':<10} {'validations':>11} {'per s (wall)':>13} {'per CPU-s (core)':>17} "
          f"{'us each':>8}  goal")
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-rp-kit-") as tmp:
        for alg in ("ES256", "RS256"):
            provider = start_provider(Path(tmp) / alg, alg)
            try:
                provider.person(EMAIL)
                rp = provider.client("Bench service")
                token = provider.access_token(rp, EMAIL)
                full = ResourceServer(provider.issuer, audience=rp.client_id, token_cache_size=0)
                cached = ResourceServer(provider.issuer, audience=rp.client_id)
                assert full.validate(token).centre == "12345" and cached.validate(token).centre == "12345"
                header = f"Bearer {token}"
                fetches = provider.jwks_requests
                for name, func, goal in (
                        ("validate", lambda: full.validate(token), True),        # every signature verified
                        ("authorize", lambda: full.authorize(header, "results.view"), True),
                        ("repeat", lambda: cached.authorize(header, "results.view"), False)):
                    count, wall, cpu = measure(func, args.duration)
                    per_core = count / cpu if cpu else float("inf")
                    ok = per_core >= 5000
                    failed |= goal and not ok
                    verdict = ("ok" if ok else "BELOW 5,000/s") if goal else "(token cache hit)"
                    print(f"{alg:<6} {name:<10} {count:>11,} {count / wall:>13,.0f} {per_core:>17,.0f} "
                          f"{1e6 * cpu / count:>8.1f}  {verdict}")
                assert provider.jwks_requests == fetches, "the JWKS was fetched again during the run"
            finally:
                provider.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
