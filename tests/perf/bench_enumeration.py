"""How long a wrong password takes for a registered and for an unknown address (not a test).

    python tests/perf/bench_enumeration.py [--rounds 200]

A real provider (gunicorn, 1 worker, PostgreSQL + Redis, the shipped argon2id parameters; only the
rate limits are raised so the benchmark is not refused) answers the password step for `rounds`
registered addresses and `rounds` unknown ones, interleaved, each address tried once (so no lock
comes into play). It prints the median and the 10th/90th percentiles of each, and their difference.
The structural guarantee (same statements, store calls and argon2 work) is
tests/integration/accounts/test_signin_enumeration.py; this shows what is left in wall-clock time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.live_provider import LiveProvider  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def policies_with_room(folder: Path) -> Path:
    from idp import policy

    folder.mkdir(parents=True, exist_ok=True)
    for item in policy.default_dir().glob("*.toml"):
        shutil.copy(item, folder / item.name)
    security = folder / "security.toml"
    text = re.sub(r'(sign_in_per_(?:ip|email)) = "[^"]+"', r'\1 = "100000 per minute"', security.read_text())
    security.write_text(text)
    return folder


def wrong_password_ms(base: str, email: str) -> float:
    http = requests.Session()
    http.trust_env = False
    page = http.get(base + "/signin", timeout=10)
    http.post(base + "/signin", data={"email": email, "csrf_token": CSRF.search(page.text).group(1)},
              allow_redirects=False, timeout=10)
    page = http.get(base + "/signin/password", timeout=10)
    token = CSRF.search(page.text).group(1)
    started = time.perf_counter()
    answer = http.post(base + "/signin/password", data={"password": "not-the-password-1", "csrf_token": token},
                       allow_redirects=False, timeout=10)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 400, answer.status_code
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LiveProvider(Path(tmp), name="enum") as provider:
        provider.setup()
        provider.env["IDP_POLICIES_DIR"] = str(policies_with_room(Path(tmp) / "policies"))
        known = [f"known{n}@centre.example" for n in range(args.rounds)]
        for email in known:
            provider.make_account(email=email, mfa=False)
        provider.start(workers=1)
        for n in range(10):  # warm-up
            wrong_password_ms(provider.base, f"warm{n}@centre.example")
        times = {"registered": [], "unknown": []}
        for n, email in enumerate(known):
            times["registered"].append(wrong_password_ms(provider.base, email))
            times["unknown"].append(wrong_password_ms(provider.base, f"nobody{n}@centre.example"))
    print(f"wrong password, {args.rounds} addresses each, 1 gunicorn worker, shipped argon2id parameters")
    for kind, values in times.items():
        q = statistics.quantiles(values, n=10)
        print(f"  {kind:10}  median {statistics.median(values):7.2f} ms   p10 {q[0]:7.2f}   p90 {q[-1]:7.2f}")
    delta = statistics.median(times["registered"]) - statistics.median(times["unknown"])
    print(f"  difference of medians (registered - unknown): {delta:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
