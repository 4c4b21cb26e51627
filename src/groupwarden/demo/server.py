"""A real scim2-server (in-memory storage) on 127.0.0.1, served from a daemon thread."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.testserver.cli import ThreadingWSGIServer
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

log = logging.getLogger(__name__)

# scim2-server logs client errors at INFO; with no handler configured, Python's last-resort
# handler would print its warnings to stderr, right over the TUI. A NullHandler stops that
# while an application that configures logging still receives them.
logging.getLogger("scim2_server").addHandler(logging.NullHandler())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # wsgiref writes one line per request to stderr; the demo runs under a TUI.
        pass


class _QuietServer(ThreadingWSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr (a client hanging up, say); log it instead.
        log.debug("demo SCIM server: error while serving %s", client_address, exc_info=True)


def scim_app(token: str) -> BearerTokenApplication:
    """The scim2-server WSGI app: RFC 7643 schemas, in-memory storage, one bearer token."""
    config = load_default_service_provider_config()
    config.authentication_schemes = [BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    return BearerTokenApplication(
        InMemoryStorage(),
        provider,
        # The secret signs the server's pagination cursors; its own, not the token.
        service=ScimService(provider, secret=secrets.token_urlsafe(32)),
        bearer_tokens=[token],
    )


class ScimServer:
    """scim2-server over in-memory storage, reachable at .url (ending in /v2), bearer token only."""

    def __init__(self, token: str) -> None:
        app = scim_app(token)
        self._server = make_server(
            "127.0.0.1", 0, app, server_class=_QuietServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}/v2"
        # A short poll interval, so that stop() returns at once instead of within 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="demo-scim-server", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"ScimServer(url={self.url!r})"

    def stop(self) -> None:
        """Stop serving and close the socket; calling it twice is harmless."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ScimServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_scim_server(token: str) -> ScimServer:
    """Start a SCIM server on a free port of 127.0.0.1 that accepts only this bearer token."""
    return ScimServer(token)
