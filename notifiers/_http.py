"""One HTTP request for the HTTP channels (webhook, SMS), with failures sorted into retry or dead."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from . import DeliveryError
from . import PermanentDeliveryError

#: statuses worth retrying besides 5xx: request timeout, conflict (a concurrent duplicate), rate limit
RETRYABLE = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None = None,
    timeout: float,
) -> Response:
    """Send one request; return the 2xx response.

    :raises DeliveryError: connection refused or reset, timeout, 5xx or another retryable status.
    :raises PermanentDeliveryError: not an http(s) URL, or a 4xx the receiver will always answer.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentDeliveryError(f"只支持 http/https 地址: {url[:100]}")
    req = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # the scheme was checked above
            return Response(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        message = f"HTTP {exc.code} {exc.reason}: {detail}".strip()
        if exc.code >= 500 or exc.code in RETRYABLE:
            raise DeliveryError(message) from exc
        raise PermanentDeliveryError(message) from exc
    except (OSError, ValueError) as exc:  # URLError (refused, DNS), timeouts, resets, bad URLs
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(reason).__name__}: {reason}") from exc
