"""A small retrying JSON-over-HTTP layer shared by the identity-provider clients.

Every failure becomes a SyncError whose one-line message we build ourselves: httpx's own
messages can carry a URL with credentials, and headers (the token) never appear at all.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from groupwarden.domain.errors import SyncError
from groupwarden.domain.text import printable

log = logging.getLogger(__name__)

#: Seconds the server asked us to wait, or None to fall back on our own backoff.
ServerWait = Callable[[httpx.Response], float | None]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Query parameters whose values may be credentials (signed URLs, API keys).
SECRET_PARAM_WORDS = ("token", "secret", "key", "password", "sig", "auth", "code")


def safe_url(url: str | httpx.URL) -> str:
    """The URL as we may show it: no userinfo, secret-looking query values masked."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [
            (k, "***" if any(word in k.lower() for word in SECRET_PARAM_WORDS) else v) for k, v in pairs
        ]
        query = urlencode(masked)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def retry_after_wait(response: httpx.Response) -> float | None:
    """Read Retry-After, in seconds or as an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(text: str, limit: int = 200) -> str:
    # Server error details are untrusted text going into a one-line message.
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_detail(response: httpx.Response) -> str:
    """The SCIM/Graph/Okta error detail of a response, when it has a recognisable one."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("detail", "errorSummary", "message", "error_description"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return _short(value)
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _short(error["message"])
    return ""


class HttpClient:
    """One httpx.Client with explicit timeouts, TLS verification and bounded retries."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        verify: bool = True,
        ca_bundle: str | None = None,
        max_attempts: int = 5,
        max_wait: float = 60.0,
        base_wait: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        server_wait: ServerWait = retry_after_wait,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        tls: ssl.SSLContext | bool
        if not verify:
            tls = False
        elif ca_bundle:
            try:
                tls = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise SyncError(
                    f"cannot load the CA bundle {ca_bundle}: {exc.__class__.__name__};"
                    " check the file is a readable PEM bundle"
                ) from None
        else:
            tls = True
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max_wait
        self.base_wait = base_wait
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.server_wait = server_wait
        self.timeout = timeout
        self.client = httpx.Client(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            verify=tls,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so many clients do not retry in step."""
        ceiling = min(self.max_wait, self.base_wait * 2.0**attempt)
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, *, missing_ok: bool = False
    ) -> httpx.Response | None:
        """GET with retries; a 2xx response, or None for a 404 when missing_ok."""
        where = safe_url(self.client.build_request("GET", url, params=params).url)
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            try:
                response = self.client.get(url, params=params)
            except httpx.TimeoutException:
                problem = f"no answer within the timeout ({self.timeout:g} s read)"
                if last:
                    raise SyncError(
                        f"GET {where} failed: {problem} after {self.max_attempts} attempts;"
                        " check the server is up, or raise the timeout"
                    ) from None
                wait = self.backoff(attempt)
            except httpx.TransportError as exc:
                # The class name says enough (ConnectError, RemoteProtocolError...) and,
                # unlike str(exc), cannot carry the URL.
                problem = exc.__class__.__name__
                if last:
                    raise SyncError(
                        f"GET {where} failed: {problem} after {self.max_attempts} attempts;"
                        " check the URL, the network and the TLS settings"
                    ) from None
                wait = self.backoff(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if status == 404 and missing_ok:
                    return None
                if status not in RETRY_STATUSES:
                    raise self._refused(where, response)
                problem = f"HTTP {status}"
                if last:
                    detail = _error_detail(response)
                    raise SyncError(
                        f"GET {where} failed: HTTP {status} after {self.max_attempts} attempts"
                        + (f" ({detail})" if detail else "")
                        + "; the server is failing or throttling, try again later"
                    )
                asked = self.server_wait(response)
                wait = self.backoff(attempt) if asked is None else asked
            wait = min(wait, self.max_wait)
            log.warning("GET %s: %s; retrying in %.1f s", where, problem, wait)
            self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_json(
        self, url: str, params: Mapping[str, Any] | None = None, *, missing_ok: bool = False
    ) -> tuple[Any, httpx.Response | None]:
        """GET and decode JSON; (None, None) for a 404 when missing_ok."""
        response = self.get(url, params, missing_ok=missing_ok)
        if response is None:
            return None, None
        try:
            return json.loads(response.content), response
        except (ValueError, UnicodeDecodeError):
            where = safe_url(response.request.url)
            raise SyncError(
                f"GET {where} returned a body that is not valid JSON"
                f" (HTTP {response.status_code}, {len(response.content)} bytes);"
                " the server or a proxy in front of it is misbehaving, try again later"
            ) from None

    def _refused(self, where: str, response: httpx.Response) -> SyncError:
        status = response.status_code
        detail = _error_detail(response)
        said = f" ({detail})" if detail else ""
        if status in (401, 403):
            return SyncError(
                f"GET {where} was refused with HTTP {status}{said}: the server did not accept"
                " the token; check the token and its permissions"
            )
        if status == 404:
            advice = "check the URL (SCIM base URLs usually end in /v2 or /scim/v2)"
        elif 300 <= status < 400:
            where_to = safe_url(response.headers.get("Location", "")) or "elsewhere"
            advice = f"the server redirects to {where_to}; use that URL instead"
        else:
            advice = "check the URL and the source settings"
        return SyncError(f"GET {where} failed with HTTP {status}{said}; {advice}")
