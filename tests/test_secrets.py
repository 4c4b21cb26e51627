"""Secrets stay out of every message and every stored error, whoever echoes them back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_server import CLIENT_ID, CLIENT_SECRET, TENANT, start_graph_server
from groupwarden.cli.main import main
from groupwarden.domain.errors import SyncError
from groupwarden.domain.secrets import register_secret, scrub
from groupwarden.services.audit import RunEvent, sync_runs
from groupwarden.services.context import Context
from groupwarden.sources.graph import Tokens
from groupwarden.sources.http import HttpClient
from groupwarden.sources.scim import ScimSource
from hostile_server import EchoTokenApp
from scim_server import RawScimApp, ServedApp


@pytest.fixture
def echo() -> Iterator[ServedApp]:
    running = ServedApp(EchoTokenApp(), "/v2")
    yield running
    running.stop()


def test_scrub_hides_registered_secrets_and_credential_fragments() -> None:
    register_secret("  s3cr3t-value-for-scrub/+x \n")
    assert scrub("it said s3cr3t-value-for-scrub/+x twice: s3cr3t-value-for-scrub/+x") == (
        "it said [redacted] twice: [redacted]"
    )
    # URL-encoded, as it would appear in a query string a server quotes back.
    assert scrub("GET /x?t=s3cr3t-value-for-scrub%2F%2Bx") == "GET /x?t=[redacted]"
    # Credentials nobody registered, in the forms servers echo them.
    assert scrub("got Authorization: Bearer eyJhbGciOi.J9x_y-z") == "got Authorization: Bearer [redacted]"
    assert scrub("bad SSWS 00abcDEF123456789xyz") == "bad SSWS [redacted]"
    assert scrub("basic dXNlcjpwYXNzd29yZA==") == "basic [redacted]"
    # Prose about tokens is left alone.
    assert scrub("the server did not accept the bearer token") == "the server did not accept the bearer token"


def test_scrub_replaces_the_longest_secret_first() -> None:
    register_secret("overlap-secret")
    register_secret("overlap-secret-longer")
    assert scrub("x overlap-secret-longer y overlap-secret") == "x [redacted] y [redacted]"


def test_a_token_echoed_in_an_error_body_is_not_repeated(echo: ServedApp) -> None:
    token = "echoed-token-Qm2v9w"
    with pytest.raises(SyncError) as caught:
        ScimSource(echo.url, token, sleep=lambda _s: None).fetch()
    message = str(caught.value)
    assert "HTTP 401" in message and "[redacted]" in message
    assert token not in message


def test_a_graph_access_token_obtained_at_run_time_is_registered() -> None:
    with start_graph_server() as server, HttpClient(sleep=lambda _s: None) as http:
        tokens = Tokens(
            tenant=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login_url=server.url, http=http
        )
        access = tokens.current()
    assert access and scrub(f"echo {access} echo") == "echo [redacted] echo"
    assert scrub(f"secret {CLIENT_SECRET}") == "secret [redacted]"


def test_cli_sync_never_prints_or_stores_an_echoed_token(
    db_url: str, echo: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "cli-echoed-token-7Hk2pL"
    monkeypatch.setenv("ECHO_TOKEN", token)

    code = main(["--db", db_url, "sync", "--scim", echo.url, "--token-env", "ECHO_TOKEN", "--name", "corp"])

    err = capsys.readouterr().err
    assert code == 1
    assert "HTTP 401" in err and "[redacted]" in err
    assert token not in err
    runs = stored_runs(db_url)
    assert [r.outcome for r in runs] == ["failed"]
    assert runs[0].error is not None and "HTTP 401" in runs[0].error
    assert token not in runs[0].error


def test_a_token_quoted_by_a_source_message_is_scrubbed_by_the_sync(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server that names the token as a group member: the source quotes the member in its
    # error, and only the sync's scrubbing stands between it and the screen and the store.
    token = "member-named-token-Zr5"
    groups = [{"id": "g1", "displayName": "eng", "members": [{"value": token, "type": "User"}]}]
    running = ServedApp(RawScimApp([{"id": "u1", "userName": "a"}], groups), "/v2")
    monkeypatch.setenv("RAW_TOKEN", token)
    try:
        code = main(["--db", db_url, "sync", "--scim", running.url, "--token-env", "RAW_TOKEN"])
    finally:
        running.stop()

    err = capsys.readouterr().err
    assert code == 1
    assert "group 'eng'" in err and "[redacted]" in err and token not in err
    runs = stored_runs(db_url)
    assert runs[0].outcome == "failed" and runs[0].error is not None
    assert "[redacted]" in runs[0].error and token not in runs[0].error


def stored_runs(db_url: str) -> list[RunEvent]:
    ctx = Context.open(db_url)
    try:
        return sync_runs(ctx)
    finally:
        ctx.close()


def test_a_megabyte_error_is_stored_cut_with_a_marker(ctx: Context) -> None:
    from groupwarden.services.audit import record_run, sync_runs
    from groupwarden.store.db import write_transaction

    huge = "group " + "x" * 1_000_000 + " has no id"
    with write_transaction(ctx.engine) as conn:
        now = ctx.clock()
        record_run(
            conn, source_name="corp", actor=ctx.actor, now=now, started_at=now, outcome="failed", error=huge
        )
    stored = sync_runs(ctx)[0].error
    assert stored is not None
    assert len(stored) < 1_100
    assert stored.startswith("group xxx")
    assert stored.endswith("more characters cut]")
