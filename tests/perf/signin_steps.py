"""CPU time of one complete sign-in, step by step (not a test): the app on PostgreSQL + Redis,
called through WSGI in this process, driven by the benchmark's own scripted sign-in (signin.py:
authorize, the email, password and authenticator-app pages, the code exchange). Prints the
milliseconds of CPU of each request and of a few kinds of work across the whole sign-in (argon2id,
SQL statements, commits, Redis commands, template rendering), which is what compare.py's sign_in
figure is made of.

    python tests/perf/signin_steps.py              # 40 people, each signing in once
    python tests/perf/signin_steps.py --people 80
    python tests/perf/signin_steps.py --profile    # and pyinstrument's call tree of the measured ones

Needs PostgreSQL + Redis as compare.py does; the process's CPU time (time.process_time: argon2id
runs on the process's hashing thread; each kind of work on the thread it runs on), so a busy
machine moves the figures less than it moves a rate.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

SCOPE = "openid profile email access offline_access"
SQL, REDIS = "SQL statements (all)", "Redis commands"


class CpuLedger:
    """CPU seconds by label; a wrapped function counts once however deep it recurses."""

    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()
        #: outermost calls by label (SQL statements, Redis commands ...)
        self.calls: collections.Counter = collections.Counter()

    def watch(self, owner, attribute: str, label: str) -> None:
        original, depth = getattr(owner, attribute), [0]

        @functools.wraps(original)
        def timed(*args, **kwargs):
            depth[0] += 1
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    self.seconds[label] += time.thread_time() - started
                    self.calls[label] += 1

        setattr(owner, attribute, timed)


class InProcess:
    """signin.py's transport, calling the WSGI app directly and timing each request's CPU."""

    def __init__(self, app, ledger: CpuLedger) -> None:
        self.app, self.ledger = app, ledger
        self.calls: collections.Counter = collections.Counter()
        #: SQL statements and Redis commands by request
        self.round_trips: collections.Counter = collections.Counter()

    def request(self, method: str, url: str, headers: dict, body):
        from werkzeug.test import EnvironBuilder

        parts = urlsplit(url)
        environ = EnvironBuilder(path=parts.path, query_string=parts.query or None, method=method, headers=headers,
                                 data=body).get_environ()
        answer = {}

        def start_response(status, header_list, _exc_info=None):
            answer["status"] = int(status.split()[0])
            found = collections.defaultdict(list)
            for name, value in header_list:
                found[name.lower()].append(value)
            answer["headers"] = found

        step = f"{method} {parts.path}"
        before = self.ledger.calls[SQL], self.ledger.calls[REDIS]
        started = time.process_time()  # (argon2id runs on the process's hashing thread)
        data = b"".join(self.app(environ, start_response))
        self.ledger.seconds[step] += time.process_time() - started
        self.round_trips[(step, SQL)] += self.ledger.calls[SQL] - before[0]
        self.round_trips[(step, REDIS)] += self.ledger.calls[REDIS] - before[1]
        self.calls[step] += 1
        return answer["status"], answer["headers"], data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40, help="sign-ins measured (+3 to warm up)")
    parser.add_argument("--statements", action="store_true",
                        help="also print the SQL statements of the last sign-in, request by request")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the measured sign-ins' time went (pyinstrument's call tree)")
    args = parser.parse_args()

    import argon2
    import jinja2
    import profile_endpoints
    import redis
    import sqlalchemy.engine.base
    import sqlalchemy.orm.session
    from provider_data import benchmark_policies
    from signin import SignIn

    with tempfile.TemporaryDirectory() as tmp:
        # one IP signs everyone in: the per-IP limits raised, as compare.py does
        app, admin, name = profile_endpoints.build(Path(tmp), policies_dir=benchmark_policies(Path(tmp) / "policies"))
        try:
            people, client = _people_and_client(app, args.people + 3)
            ledger = CpuLedger()
            for owner, attribute, label in (
                    (argon2.PasswordHasher, "verify", "argon2id verification"),
                    (sqlalchemy.engine.base.Connection, "execute", SQL),
                    (sqlalchemy.orm.session.Session, "commit", "session commits (with flush)"),
                    (redis.Redis, "execute_command", REDIS),
                    (jinja2.Template, "render", "template rendering")):
                ledger.watch(owner, attribute, label)
            transport = InProcess(app, ledger)
            flow = SignIn(people, client, "localhost", SCOPE)
            for _ in range(3):
                assert flow(transport) is None
            ledger.seconds.clear()
            ledger.calls.clear()
            transport.calls.clear()
            transport.round_trips.clear()
            profiler = _profiler() if args.profile else None
            started = time.process_time()
            for _ in range(args.people):
                failed = flow(transport)
                assert failed is None, failed
            per = (time.process_time() - started) / args.people * 1e3
            if profiler is not None:
                profiler.stop()
            if args.statements:
                _print_statements(app, transport, flow)
        finally:
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"one sign-in: {per:.1f} ms of CPU ({args.people} sign-ins)")
    print("by request:")
    for step, count in sorted(transport.calls.items(), key=lambda item: -ledger.seconds[item[0]]):
        sql, redis_commands = (transport.round_trips[(step, kind)] / args.people for kind in (SQL, REDIS))
        print(f"  {step:28s} {ledger.seconds[step] / args.people * 1e3:7.2f} ms  (x{count / args.people:.0f}, "
              f"{sql:.0f} SQL, {redis_commands:.0f} Redis)")
    print("by kind of work (across the requests; nested SQL counts under both SQL and commits):")
    for label, seconds in ledger.seconds.most_common():
        if " /" not in label:
            print(f"  {label:28s} {seconds / args.people * 1e3:7.2f} ms")
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


def _print_statements(app, transport, flow) -> None:
    """One more sign-in, printing each request's SQL statements as they are sent."""
    from sqlalchemy import event

    engines = [app.extensions["idp.db"].engine]
    if app.extensions["idp.db"].is_postgres:
        engines.append(app.extensions["idp.db"]._autocommit_engine)

    def show(_conn, _cursor, statement, _parameters, _context, _many):
        print("      " + " ".join(statement.split())[:150])

    real = transport.request

    def request(method, url, headers, body):
        print(f"  {method} {urlsplit(url).path}")
        return real(method, url, headers, body)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", show)
    transport.request = request
    try:
        assert flow(transport) is None
    finally:
        transport.request = real
        for engine in engines:
            event.remove(engine, "before_cursor_execute", show)


def _profiler():
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    return profiler


def _people_and_client(app, count: int):
    from idp.extensions import db
    from tests.support import PASSWORD, add_totp, make_account, make_client

    people = []
    with app.app_context():
        rp = make_client(grant_types=["authorization_code", "refresh_token"], scope=SCOPE,
                         id_token_signed_response_alg="ES256", redirect_uri="https://rp.bench.example/callback")
        for i in range(count):
            email = f"person{i}@centre.example"
            secret = add_totp(make_account(email, mfa=False))
            db.session.commit()
            people.append({"email": email, "password": PASSWORD, "totp_secret": secret})
    return people, {"client_id": rp.client_id, "client_secret": rp.client_secret, "redirect_uri": rp.redirect_uri}


if __name__ == "__main__":
    raise SystemExit(main())
