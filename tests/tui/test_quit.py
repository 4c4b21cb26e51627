"""Quitting the real program, in a terminal, while a sync hangs on a server that drips bytes."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tui_fixtures import open_context

from groupwarden.services import audit

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

# Bounds that only catch a hang; the time to quit itself is printed, and measured in the report.
HANG = 10.0


class DripServer(ThreadingHTTPServer):
    """Answers every request with headers and a long body, then one byte a second, forever."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), DripHandler)
        self.asked = threading.Event()
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/scim/v2"


class DripHandler(BaseHTTPRequestHandler):
    server: DripServer

    def do_GET(self) -> None:
        self.server.asked.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"{")
        self.wfile.flush()
        while not self.server.stopping.wait(1.0):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def drip_server() -> Iterator[DripServer]:
    server = DripServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


class Terminal:
    """A program on a pseudo-terminal of 100x30: what it drew, and keys typed to it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.output = b""
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            with self.changed:
                self.output += chunk
                self.changed.notify_all()
            if not chunk:
                return

    def wait_for(self, test: Callable[[bytes], bool]) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: test(self.output), timeout=HANG):
                raise AssertionError(f"the program did not get there; it drew {self.output[-500:]!r}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.mark.parametrize("key", [pytest.param(b"q", id="q"), pytest.param(b"\x03", id="ctrl+c")])
def test_quit_while_a_sync_hangs_ends_the_process_and_writes_nothing(tmp_path: Path, key: bytes) -> None:
    db = tmp_path / "gw.db"
    open_context(db).close()
    config = tmp_path / "config.toml"
    with drip_server() as server:
        config.write_text(f'[sources.drip]\nurl = "{server.url}"\ntoken_env = "GW_DRIP_TOKEN"\n')
        env = {
            **os.environ,
            "TERM": "xterm-256color",
            "GW_DRIP_TOKEN": "drip-token",
            "GROUPWARDEN_DB": str(db),
            "GROUPWARDEN_CONFIG": str(config),
        }
        term = Terminal([sys.executable, "-m", "groupwarden"], env)
        try:
            term.wait_for(lambda drawn: b"(scim)" in drawn)
            term.type(b"s")
            assert server.asked.wait(HANG), "the sync never asked the server"
            term.wait_for(lambda drawn: b"syncing drip" in drawn)
            started = time.perf_counter()
            term.type(key)
            code = term.proc.wait(timeout=HANG)
            took = time.perf_counter() - started
        finally:
            term.close()
    print(f"\ntime to quit during a hung sync ({key!r}): {took * 1000:.0f} ms")
    assert code == 0
    ctx = open_context(db)
    try:
        assert [run.outcome for run in audit.sync_runs(ctx)] == []
    finally:
        ctx.close()
