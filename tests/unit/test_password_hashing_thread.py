"""Every argon2id hash and verification runs on one thread per process (idp.accounts.passwords):
one block of working memory reused, instead of 19 MiB kept by every thread that ever hashed."""

from __future__ import annotations

import multiprocessing
import threading

import argon2

from idp.accounts import passwords

FAST = (1024, 1, 1)  # argon2id parameters small enough for a unit test


def test_verifications_from_many_threads_run_on_one_thread(monkeypatch):
    hasher = passwords._hasher(*FAST)
    stored = hasher.hash("right")
    monkeypatch.setattr(passwords, "hasher", lambda: hasher)
    ran_on, answers = set(), []
    real_verify = argon2.PasswordHasher.verify

    def verify(self, *args):
        ran_on.add(threading.get_ident())
        return real_verify(self, *args)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)

    def sign_in(password):
        answers.append(passwords.verify(stored, password)[0])

    callers = [threading.Thread(target=sign_in, args=("right" if n % 2 else "wrong",)) for n in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    assert sorted(answers) == [False] * 4 + [True] * 4  # a wrong password's exception came back as False
    assert len(ran_on) == 1 and threading.get_ident() not in ran_on


def _hash_in_child(queue):
    queue.put(argon2.PasswordHasher().verify(passwords._on_the_hashing_thread(passwords._hasher(*FAST).hash, "x"),
                                             "x"))


def test_a_forked_worker_gets_a_hashing_thread_of_its_own():
    passwords._on_the_hashing_thread(passwords._hasher(*FAST).hash, "before the fork")  # the parent's thread
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_hash_in_child, args=(queue,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0 and queue.get(timeout=5) is True
