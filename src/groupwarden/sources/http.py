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


def error_detail(response: httpx.Response) -> str:
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
    """One httpx.Client with explicit timeouts, TLS verification and bounded retries.

    Waiting is bounded twice: each wait by max_wait, and all the waits of the client's life
    by max_total_wait, so a provider that throttles forever ends the sync with a clear error.
    """

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
        max_total_wait: float = 900.0,
        base_wait: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        server_wait: ServerWait = retry_after_wait,
        auth: httpx.Auth | None = None,
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
        self.max_total_wait = max_total_wait
        self.base_wait = base_wait
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.server_wait = server_wait
        self.timeout = timeout
        #: Seconds slept so far, retries and pacing together.
        self.waited = 0.0
        self.client = httpx.Client(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            verify=tls,
            auth=auth,
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

    def pause(self, seconds: float, where: str, why: str) -> None:
        """Sleep, counting against the total wait budget."""
        seconds = max(0.0, min(seconds, self.max_wait))
        if self.waited + seconds > self.max_total_wait:
            raise SyncError(
                f"{where}: {why}, and the waits would pass {self.max_total_wait:g} s in total;"
                " the provider is throttling too hard, try again later"
            )
        self.waited += seconds
        if seconds > 0:
            log.warning("%s: %s; waiting %.1f s", where, why, seconds)
            self.sleep(seconds)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        missing_ok: bool = False,
        passthrough: frozenset[int] = frozenset(),
    ) -> httpx.Response | None:
        """GET with retries; a 2xx response, or None for a 404 when missing_ok.

        Statuses in passthrough come back as responses for the caller to judge (a refused
        Graph delta link, say) instead of becoming errors.
        """
        return self.request("GET", url, params, missing_ok=missing_ok, passthrough=passthrough)

    def post_form(self, url: str, data: Mapping[str, str]) -> httpx.Response:
        """POST a form with retries (an OAuth2 token request); a 2xx response."""
        response = self.request("POST", url, None, data=data)
        assert response is not None
        return response

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        missing_ok: bool = False,
        passthrough: frozenset[int] = frozenset(),
    ) -> httpx.Response | None:
        def where() -> str:
            # Built only when something goes wrong: building a request costs as much as a
            # small page's parse, and a sync sends thousands.
            return f"{method} {safe_url(self.client.build_request(method, url, params=params).url)}"

        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            try:
                response = self.client.request(method, url, params=params, data=data, json=json_body)
            except httpx.TimeoutException:
                problem = f"no answer within the timeout ({self.timeout:g} s read)"
                if last:
                    raise SyncError(
                        f"{where()} failed: {problem} after {self.max_attempts} attempts;"
                        " check the server is up, or raise the timeout"
                    ) from None
                wait = self.backoff(attempt)
            except httpx.TransportError as exc:
                # The class name says enough (ConnectError, RemoteProtocolError...) and,
                # unlike str(exc), cannot carry the URL.
                problem = exc.__class__.__name__
                if last:
                    raise SyncError(
                        f"{where()} failed: {problem} after {self.max_attempts} attempts;"
                        " check the URL, the network and the TLS settings"
                    ) from None
                wait = self.backoff(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300 or status in passthrough:
                    return response
                if status == 404 and missing_ok:
                    return None
                if status not in RETRY_STATUSES:
                    raise self._refused(where(), response)
                problem = f"HTTP {status}"
                if last:
                    detail = error_detail(response)
                    raise SyncError(
                        f"{where()} failed: HTTP {status} after {self.max_attempts} attempts"
                        + (f" ({detail})" if detail else "")
                        + "; the server is failing or throttling, try again later"
                    )
                asked = self.server_wait(response)
                wait = self.backoff(attempt) if asked is None else asked
            self.pause(wait, where(), f"{problem}, retrying")
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        missing_ok: bool = False,
        passthrough: frozenset[int] = frozenset(),
    ) -> tuple[Any, httpx.Response | None]:
        """GET and decode JSON; (None, None) for a 404 when missing_ok."""
        response = self.get(url, params, missing_ok=missing_ok, passthrough=passthrough)
        if response is None:
            return None, None
        return decode_json(response), response

    def _refused(self, where: str, response: httpx.Response) -> SyncError:
        status = response.status_code
        detail = error_detail(response)
        said = f" ({detail})" if detail else ""
        if status in (401, 403):
            return SyncError(
                f"{where} was refused with HTTP {status}{said}: the server did not accept"
                " the token; check the token and its permissions"
            )
        if status == 404:
            advice = "check the URL (SCIM base URLs usually end in /v2 or /scim/v2)"
        elif 300 <= status < 400:
            where_to = safe_url(response.headers.get("Location", "")) or "elsewhere"
            advice = f"the server redirects to {where_to}; use that URL instead"
        else:
            advice = "check the URL and the source settings"
        return SyncError(f"{where} failed with HTTP {status}{said}; {advice}")


def decode_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        where = safe_url(response.request.url)
        raise SyncError(
            f"GET {where} returned a body that is not valid JSON"
            f" (HTTP {response.status_code}, {len(response.content)} bytes);"
            " the server or a proxy in front of it is misbehaving, try again later"
        ) from None


def check_same_origin(link: str, base: str, where: str) -> str:
    """A paging link, refused unless it points at the server we were given.

    We send the token with every request, so following a link to another host would hand
    the token to whoever wrote the link.
    """
    theirs, ours = urlsplit(link), urlsplit(base)
    if (theirs.scheme, theirs.hostname, theirs.port) != (ours.scheme, ours.hostname, ours.port):
        raise SyncError(
            f"{where}: the server's next-page link points at {safe_url(link)}, not at"
            f" {safe_url(base)}; refusing to send the token elsewhere, sync aborted"
        )
    return link
