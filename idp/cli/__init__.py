"""The `idp` command.

Every command reads the same settings (``--config FILE``, else ``IDP_CONFIG``, else built-in
defaults relative to the working directory), so commands run from the folder where ``idp serve``
runs see the same database and keys. Commands that scripts use print one JSON object (or list) on
stdout. Bad settings or policies: one line on stderr, exit 2; a refusal: one line, exit 1.

    server.py   setup, serve, metrics, db, keys
    people.py   centre, eo, account, board
    clients.py  client
    mfa.py      mfa
    outbox.py   outbox
"""

from __future__ import annotations

import click

from . import clients, mfa, outbox, people, server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="idp")
def main():
    """The exam-board identity provider."""


for command in (server.setup_command, server.serve, server.db, server.keys, server.metrics, *people.COMMANDS, clients.client,
                mfa.mfa, outbox.outbox):
    main.add_command(command)
