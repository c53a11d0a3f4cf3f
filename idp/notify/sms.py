"""SMS: an outbox folder (one .json per message) for the quick start, or Twilio's REST API.

Both implement ``SmsSender.send``; a refused message raises ``DeliveryError``.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from ..extensions import settings as app_settings
from .mail import DeliveryError


class SmsSender(ABC):
    @abstractmethod
    def send(self, to: str, text: str) -> None: ...


class OutboxSms(SmsSender):
    def __init__(self, folder: Path, sender: str) -> None:
        self.folder, self.sender = Path(folder), sender

    def send(self, to: str, text: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = uuid.uuid1().hex
            partial = self.folder / f".{name}.partial"
            partial.write_text(json.dumps({"to": to, "from": self.sender, "text": text, "at": int(time.time())}))
            partial.replace(self.folder / f"{name}.json")  # readers never see half a message
        except OSError as exc:
            raise DeliveryError(f"could not write to the SMS outbox ({exc.strerror})") from exc


class TwilioSms(SmsSender):
    """Twilio Programmable Messaging: POST /2010-04-01/Accounts/{sid}/Messages.json."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str, sender: str, timeout: float = 10) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{urllib.parse.quote(account_sid)}/Messages.json"
        self.auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.sender, self.timeout = sender, timeout

    def send(self, to: str, text: str) -> None:
        body = urllib.parse.urlencode({"To": to, "From": self.sender, "Body": text}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Authorization": self.auth, "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if response.status not in (200, 201):
                    raise DeliveryError(f"the SMS provider answered {response.status}")
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.loads(exc.read(4096) or b"{}").get("message", "")
            except ValueError:
                pass
            raise DeliveryError(f"the SMS provider refused the message ({exc.code} {detail})".strip()) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"the SMS provider could not be reached ({exc.__class__.__name__})") from exc


def sender() -> SmsSender:
    settings = app_settings()
    sms = settings.sms
    if sms.backend == "twilio":
        return TwilioSms(sms.twilio_base_url, sms.twilio_account_sid, sms.twilio_auth_token, sms.sender)
    return OutboxSms(settings.sms_outbox_dir, sms.sender)
