"""Each email's Message-ID (RFC 5322 §3.6.4): unique, at the sender's domain (the address taken
out of a display name), and drawn without touching the random module's shared generator."""

from __future__ import annotations

import random
from email.utils import parseaddr

from idp.notify.mail import _message_id


def test_a_message_id_is_unique_and_at_the_senders_domain():
    ids = {_message_id("Exam board <no-reply@board.example>") for _ in range(1000)}
    assert len(ids) == 1000
    for message_id in ids:
        assert message_id.startswith("<") and message_id.endswith("@board.example>"), message_id
    assert _message_id("no-reply@board.example").endswith("@board.example>")
    assert _message_id("").endswith("@localhost>")
    assert parseaddr(_message_id("a@b.example"))[1]


def test_the_shared_random_generator_is_left_alone():
    before = random.getstate()
    _message_id("no-reply@board.example")
    assert random.getstate() == before
