"""A small retrying JSON-over-HTTP layer shared by the identity-provider clients.

Every failure becomes a SyncError whose one-line message we build ourselves: httpx's own
messages can carry a URL with credentials, and headers (the token) never appear at all.
What a server says about an error is scrubbed of every known secret before it is quoted.

A server cannot hold us: each request has a deadline for the whole exchange (httpx's
timeouts apply to each read, so a server dripping a byte at a time never trips them), the
client has a deadline for all its requests together (the sync's), and a body is read in
bounded steps, decompressing it ourselves, up to a size cap (a gzip bomb stops there).

Requests may come from several threads at once (the sources page concurrently). A gate bounds
how many are in flight: a 429 halves that number for the rest of the client's life, and while
its Retry-After runs no other request starts either. Each request in flight has an
httpx.Client of its own (one connection each, kept for the next request): httpx's shared
connection pool checks every connection, under a lock and with a poll() each, twice a
request, which at loopback speed cost more than running side by side gained.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from groupwarden.domain.errors import SyncError
from groupwarden.domain.secrets import scrub
from groupwarden.domain.text import printable

log = logging.getLogger(__name__)

#: Seconds the server asked us to wait, or None to fall back on our own backoff.
ServerWait = Callable[[httpx.Response], float | None]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Query parameters whose values may be credentials (signed URLs, API keys).
SECRET_PARAM_WORDS = ("token", "secret", "key", "password", "sig", "auth", "code")
MIB = 1024 * 1024
# The largest body we read, once decompressed: the largest page we ask for (10,000 Okta
# groups, 1,000 SCIM users with every attribute) is a few MiB, so this leaves room to spare.
MAX_BODY = 64 * MIB
# At most this much decompressed output per step, so a bomb's output arrives in small pieces.
INFLATE_STEP = MIB
# The content codings we ask for, and therefore decode; anything else is refused.
ACCEPT_ENCODING = "gzip, deflate"
# Socket timeouts can fire a hair early; a timeout this close to the deadline is the deadline.
DEADLINE_SLACK = 0.05
# Headers that describe the body on the wire, not the decompressed body we hand over.
_CODING_HEADERS = frozenset({"content-encoding", "content-length"})


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


def server_text(text: str, limit: int = 200) -> str:
    """Untrusted text from a server, made fit to quote in a one-line message.

    Scrubbed before it is cut, so a cut cannot leave half a secret behind.
    """
    text = printable(" ".join(scrub(text).split()))
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
            return server_text(value)
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return server_text(error["message"])
    return ""


class _Gate:
    """How many requests may be in flight at once; none while a throttled request waits out its 429."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        #: A lower ceiling the caller sets for a while (a rate budget running low), or None.
        self.capped: int | None = None
        self.active = 0
        #: Requests waiting out a 429: until they are done waiting, no other request starts.
        self.holding = 0
        self.cond = threading.Condition()

    def enter(self) -> None:
        with self.cond:
            while self.active >= self.allowed() or self.holding:
                self.cond.wait()
            self.active += 1

    def allowed(self) -> int:
        return self.limit if self.capped is None else min(self.limit, self.capped)

    def cap(self, most: int | None) -> None:
        """At most `most` requests at once until the next cap (None: the limit alone again)."""
        with self.cond:
            self.capped = most
            self.cond.notify_all()

    def leave(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def hold(self) -> None:
        """No request starts until resume()."""
        with self.cond:
            self.holding += 1

    def throttled(self) -> None:
        """A 429: fewer requests at once from now on, and none until resume()."""
        with self.cond:
            self.holding += 1
            if self.limit > 1:
                self.limit //= 2
                log.warning("the server is throttling: at most %d requests at once from now on", self.limit)

    def resume(self) -> None:
        with self.cond:
            self.holding -= 1
            self.cond.notify_all()


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default verifying context, built once: loading the CA bundle takes some 40 ms,
    and every fetch makes a client, every request in flight one more."""
    return httpx.create_ssl_context()


class _Clients:
    """The httpx.Clients of an HttpClient: one per request in flight, reused as they come back."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.first = httpx.Client(**settings)
        self.made = [self.first]
        self.idle = [self.first]
        self.lock = threading.Lock()
        self.closed = False

    def take(self) -> httpx.Client:
        # list.pop and list.append are atomic: the lock is only for making one.
        try:
            return self.idle.pop()
        except IndexError:
            pass
        with self.lock:
            if self.closed:
                return self.first  # closed: the request fails as it did with one client
            client = httpx.Client(**self.settings)
            self.made.append(client)
            return client

    def give(self, client: httpx.Client) -> None:
        self.idle.append(client)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for client in self.made:
                client.close()


class _Overdue(Exception):
    """A deadline passed while a request was in flight."""


class _Inflater:
    """Decompresses a gzip or deflate body in steps of at most INFLATE_STEP bytes."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # gzip framing; for deflate, the zlib framing RFC 9110 means, or (some servers)
        # a bare deflate stream, told apart on the first bytes.
        self.wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        self.inflater = zlib.decompressobj(self.wbits)
        self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self.started and self.coding == "deflate":
            self.started = True
            try:
                zlib.decompressobj(zlib.MAX_WBITS).decompress(data[:64], 1)
            except zlib.error:
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = self.inflater.decompress(data, INFLATE_STEP)
        yield out
        while self.inflater.unconsumed_tail:
            yield self.inflater.decompress(self.inflater.unconsumed_tail, INFLATE_STEP)

    def end(self) -> bytes:
        return self.inflater.flush()


class HttpClient:
    """One httpx.Client with explicit timeouts, TLS verification and bounded retries.

    Waiting is bounded twice: each wait by max_wait, and all the waits of the client's life
    by max_total_wait, so a provider that throttles forever ends the sync with a clear error.
    Time is bounded twice too: each request by request_timeout (the whole exchange, body
    included), and every request of the client's life by sync_timeout, counted from its
    creation: a source makes one client per fetch, so that is the fetch's deadline.
    """

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        sync_timeout: float = 1800.0,
        max_body: int = MAX_BODY,
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
        concurrency: int = 1,
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
            tls = _default_tls()
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max_wait
        self.max_total_wait = max_total_wait
        self.base_wait = base_wait
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.server_wait = server_wait
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.sync_timeout = sync_timeout
        self.max_body = max_body
        #: time.monotonic() past which no request may run.
        self.ends_at = time.monotonic() + sync_timeout
        #: Seconds slept so far, retries and pacing together.
        self.waited = 0.0
        self._waited_lock = threading.Lock()
        #: Bounds the requests in flight at once; a 429 lowers it.
        self.gate = _Gate(concurrency)
        sent = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
        self._clients = _Clients(
            {
                "headers": sent,
                "timeout": httpx.Timeout(timeout, connect=connect_timeout),
                "verify": tls,
                "auth": auth,
                "transport": transport,
                "follow_redirects": False,
            }
        )
        #: The first of the clients, for what does not send (building a URL to show).
        self.client = self._clients.first

    def close(self) -> None:
        self._clients.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so many clients do not retry in step."""
        ceiling = min(self.max_wait, self.base_wait * 2.0**attempt)
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def pause(self, seconds: float, where: str, why: str) -> None:
        """Sleep, counting against the total wait budget and the sync's deadline."""
        seconds = max(0.0, min(seconds, self.max_wait))
        with self._waited_lock:
            # Threads waiting side by side each count: the budget bounds what we ask of the
            # provider's patience, not the wall clock.
            if self.waited + seconds > self.max_total_wait:
                raise SyncError(
                    f"{where}: {why}, and the waits would pass {self.max_total_wait:g} s in total;"
                    " the provider is throttling too hard, try again later"
                )
            if time.monotonic() + seconds > self.ends_at:
                raise self._overdue(where, self.ends_at)
            self.waited += seconds
        if seconds > 0:
            log.warning("%s: %s; waiting %.1f s", where, why, seconds)
            self.sleep(seconds)

    def pace(self, seconds: float, where: str, why: str) -> None:
        """pause(), with no other request starting meanwhile: spacing requests out spaces them all."""
        self.gate.hold()
        try:
            self.pause(seconds, where, why)
        finally:
            self.gate.resume()

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
            throttled = False
            self.gate.enter()
            try:
                started = time.monotonic()
                ends = min(started + self.request_timeout, self.ends_at)
                response = self._send(method, url, params, data, json_body, where, started, ends)
            except _Overdue:
                raise self._overdue(where(), ends) from None
            except httpx.TimeoutException:
                if time.monotonic() >= ends - DEADLINE_SLACK:
                    raise self._overdue(where(), ends) from None
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
                if status == 429:
                    self.gate.throttled()
                    throttled = True
            finally:
                self.gate.leave()
            try:
                self.pause(wait, where(), f"{problem}, retrying")
            finally:
                if throttled:
                    self.gate.resume()
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
        json_body: Any,
        where: Callable[[], str],
        started: float,
        ends: float,
    ) -> httpx.Response:
        """One exchange, its body read whole before ends (time.monotonic()) and within max_body."""
        budget = ends - started
        if budget <= 0:
            raise _Overdue
        timeout = self.client.timeout
        if budget < self.timeout or budget < self.connect_timeout:
            # No single wait may outlast the deadline either.
            timeout = httpx.Timeout(min(self.timeout, budget), connect=min(self.connect_timeout, budget))
        client = self._clients.take()
        try:
            request = client.build_request(
                method, url, params=params, data=data, json=json_body, timeout=timeout
            )
            response = client.send(request, stream=True)
            if response.is_stream_consumed:
                # An in-memory transport (a test's) hands over a body it has read already.
                if len(response.content) > self.max_body:
                    raise self._too_big(where(), "")
                return response
            try:
                coding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if coding == "identity":
                    body = self._read_plain(response, ends, where)
                    headers: httpx.Headers = response.headers
                else:
                    body = self._read_encoded(response, coding, ends, where)
                    headers = httpx.Headers(
                        [(k, v) for k, v in response.headers.multi_items() if k not in _CODING_HEADERS]
                    )
            finally:
                response.close()
        finally:
            self._clients.give(client)
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    def _read_plain(self, response: httpx.Response, ends: float, where: Callable[[], str]) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise self._too_big(where(), "")
        chunks: list[bytes] = []
        size = 0
        monotonic = time.monotonic
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > self.max_body:
                raise self._too_big(where(), "")
            chunks.append(chunk)
            if monotonic() > ends:
                raise _Overdue
        return b"".join(chunks)

    def _read_encoded(
        self, response: httpx.Response, coding: str, ends: float, where: Callable[[], str]
    ) -> bytes:
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise SyncError(
                f"{where()} answered in the content coding {server_text(coding, 40)!r}, which we did"
                f" not ask for (only {ACCEPT_ENCODING}); the server or a proxy is misbehaving"
            )
        inflater = _Inflater("deflate" if coding == "deflate" else "gzip")
        chunks: list[bytes] = []
        size = 0
        monotonic = time.monotonic
        try:
            for raw in response.iter_raw():
                for chunk in inflater.feed(raw):
                    size += len(chunk)
                    if size > self.max_body:
                        raise self._too_big(where(), " once decompressed")
                    chunks.append(chunk)
                if monotonic() > ends:
                    raise _Overdue
            tail = inflater.end()
            if size + len(tail) > self.max_body:
                raise self._too_big(where(), " once decompressed")
            chunks.append(tail)
        except zlib.error:
            raise SyncError(
                f"{where()} sent a {coding} body that does not decompress; the server or a proxy"
                " is misbehaving, try again later"
            ) from None
        return b"".join(chunks)

    def _too_big(self, where: str, how: str) -> SyncError:
        return SyncError(
            f"{where} sent more than {_size(self.max_body)}{how}, far more than a page we ask"
            " for; the server is misbehaving, sync aborted"
        )

    def _overdue(self, where: str, ends: float) -> SyncError:
        """The error for a deadline that passed: the sync's, or else the request's."""
        if ends >= self.ends_at:
            return SyncError(
                f"{where}: the fetch passed its time limit of {self.sync_timeout:g} s (the sync timeout)"
                " and was stopped; raise the sync timeout if the directory is that large, sync aborted"
            )
        return SyncError(
            f"{where} did not complete within the request timeout of {self.request_timeout:g} s;"
            " the server is stalling or too slow (raise the request timeout if it is only slow),"
            " sync aborted"
        )

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


def _size(count: int) -> str:
    return f"{count / MIB:g} MiB" if count >= MIB else f"{count} bytes"


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
