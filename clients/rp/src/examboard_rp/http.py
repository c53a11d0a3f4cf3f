"""Tiny JSON-over-HTTP helper on the standard library: timeouts, a size cap, https only
(plain http allowed for loopback development issuers), and the Cache-Control max-age."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from .errors import ConfigurationError, ProviderUnavailable

MAX_BYTES = 512 * 1024
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.I)


@dataclass(frozen=True)
class Response:
    status: int
    data: object
    max_age: int | None


#: (url, form fields or None, extra headers, timeout) -> Response. Tests and unusual deployments
#: (an outbound proxy with its own client, say) may pass their own.
Fetch = Callable[[str, dict | None, dict, float], Response]


def check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return url
    raise ConfigurationError("insecure_url", f"{what} must be an https URL (plain http only for "
                                             f"localhost), got {url!r}")


def max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def urllib_fetch(url: str, form: dict | None, headers: dict, timeout: float) -> Response:
    """GET (or POST ``form``) ``url`` and parse JSON; ProviderUnavailable on any failure."""
    from urllib.parse import urlencode

    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json", **headers})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - checked URL
            status, raw = answer.status, answer.read(MAX_BYTES + 1)
            cache_control = answer.headers.get("Cache-Control")
    except urllib.error.HTTPError as exc:
        status, raw, cache_control = exc.code, exc.read(MAX_BYTES + 1), None
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        raise ProviderUnavailable("provider_unreachable", f"{url}: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise ProviderUnavailable("provider_response_too_large", f"{url}: response over {MAX_BYTES} bytes")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        raise ProviderUnavailable("provider_bad_json", f"{url}: HTTP {status}, not JSON") from None
    return Response(status, parsed, max_age(cache_control))
