"""`idp outbox`: the newest messages in the development outboxes, decoded (the quick start's inbox)."""

from __future__ import annotations

import email
import email.policy
import json

import click

from .base import CONFIG_OPTION, load_settings


@click.command()
@CONFIG_OPTION
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1, 100),
              help="How many of the newest messages.")
@click.option("--to", "recipient", default=None, help="Only messages to this address or phone number.")
@click.option("--sms", is_flag=True, help="The SMS outbox instead of the email one.")
def outbox(config_path, count, recipient, sms):
    """Print the newest emails (or text messages) written to the outbox folder ([mail] backend =
    "outbox", the default): who to, the subject and the plain-text body, newest last."""
    settings = load_settings(config_path)
    folder = settings.sms_outbox_dir if sms else settings.mail_outbox_dir
    files = sorted(folder.glob("*.json" if sms else "*.eml"), key=lambda p: p.stat().st_mtime) \
        if folder.exists() else []
    shown = []
    for path in reversed(files):
        if sms:
            message = json.loads(path.read_text())
            if recipient and message.get("to") != recipient:
                continue
            shown.append(f"To: {message.get('to')}\n\n{message.get('text')}")
        else:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if recipient and recipient.strip().lower() not in str(message["To"]).lower():
                continue
            body = message.get_body(preferencelist=("plain",))
            shown.append(f"To: {message['To']}\nSubject: {message['Subject']}\nDate: {message['Date']}\n\n"
                         f"{body.get_content().strip() if body else ''}")
        if len(shown) == count:
            break
    if not shown:
        click.echo(f"No messages in {folder}.", err=True)
        raise SystemExit(1)
    click.echo(("\n" + "-" * 72 + "\n").join(reversed(shown)))
