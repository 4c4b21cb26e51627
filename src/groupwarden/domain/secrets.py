"""The secrets this process holds (tokens, client secrets), kept out of every message.

Whoever reads or obtains a secret registers it here; scrub() is applied where text leaves
the process (an error shown to the user, an error stored with a run). A server can echo our
token back in its error text, and a message can quote a value we read: both end up here,
in one place, instead of each message being careful on its own.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

REDACTED = "[redacted]"
# An authorization header's value as servers echo it back: a scheme and a token68
# (RFC 9110 §11.2). Eight characters at least, so prose like "the bearer token" survives;
# our own secrets are caught by the registry whatever their length.
_AUTH_FRAGMENT = re.compile(
    r"\b(Bearer|SSWS|Basic)\s+(?!\[redacted\])[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE
)

_lock = threading.Lock()
# Longest first, so a secret that contains another is replaced whole.
_known: tuple[str, ...] = ()


def register_secret(secret: str | None) -> None:
    """Remember a secret, so that scrub() hides it (and its URL-encoded form) from now on."""
    global _known
    if not secret or not secret.strip():
        return
    forms = {secret, secret.strip(), quote(secret.strip(), safe="")}
    with _lock:
        merged = set(_known) | forms
        _known = tuple(sorted(merged, key=len, reverse=True))


def scrub(text: str) -> str:
    """text with every registered secret, and anything that looks like a credential, redacted."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _AUTH_FRAGMENT.sub(lambda match: f"{match.group(1)} {REDACTED}", text)
