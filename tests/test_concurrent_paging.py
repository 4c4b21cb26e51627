"""Concurrent paging: the same listing as one page at a time, and every guard still holding.

Real servers on 127.0.0.1 that count the requests they serve at once; no timing is asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from graph_server import STATIC_TOKEN, TENANT, GraphServer, start_graph_server
from groupwarden.config import SourceConfig, load_settings
from groupwarden.domain.directory import Snapshot
from groupwarden.domain.errors import BadInput, SyncError
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.sync import build_source, run_sync
from groupwarden.sources.graph import GraphSource
from groupwarden.sources.http import HttpClient
from groupwarden.sources.okta import OktaSource
from groupwarden.sources.scim import ScimSource
from idp_fakes import FakeClock, organisation
from okta_server import OktaServer, start_okta_server
from scim_server import ScimServer, ServedApp, start_scim_server


@pytest.fixture
def server() -> Iterator[ScimServer]:
    with start_scim_server() as running:
        yield running


class Counting:
    """WSGI middleware: each request waits a little, and the most served at once is kept."""

    def __init__(self, app: Callable[..., Iterable[bytes]], delay: float) -> None:
        self.app, self.delay = app, delay
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            # Long enough for the requests sent side by side to overlap at the server.
            time.sleep(self.delay)
            return list(self.app(environ, start_response))
        finally:
            with self.lock:
                self.in_flight -= 1


def counted(server: ServedApp, delay: float) -> Counting:
    counting = Counting(server.server.get_app(), delay)
    server.server.set_app(counting)
    return counting


def populate(server: ScimServer, users: int = 60, groups: int = 9) -> None:
    ids = [server.add_user(f"user{n:03}", display_name=f"User {n}") for n in range(users)]
    for g in range(groups):
        server.add_group(f"team{g}", users=ids[g::groups])


def scim(server: ScimServer, waits: list[float] | None = None, **options: object) -> ScimSource:
    sleep = waits.append if waits is not None else (lambda _seconds: None)
    return ScimSource(server.url, server.token, name="corp", page_size=7, sleep=sleep, **options)  # type: ignore[arg-type]


def sequential(server: ScimServer) -> Snapshot:
    snapshot = scim(server, page_concurrency=1).fetch()
    server.faults.list_requests = server.faults.most_in_flight = 0
    server.faults.queries.clear()
    return snapshot


def test_scim_concurrent_listing_equals_the_sequential_one(server: ScimServer) -> None:
    populate(server)
    expected = sequential(server)
    assert server.faults.most_in_flight == 0
    snapshot = scim(server, page_concurrency=4).fetch()
    assert snapshot == expected
    assert len(snapshot.users) == 60 and len(snapshot.groups) == 9
    # Every page once, and the one past the end of each listing, as one page at a time:
    # 9 pages of users and 2 of groups, and one more each. Nothing fetched ahead is wasted.
    assert server.faults.list_requests == 13
    assert "startIndex=61&count=7" in server.faults.queries


def test_scim_requests_in_flight_stay_within_the_pool(server: ScimServer) -> None:
    populate(server, users=40, groups=2)
    # Each answer waits, so the pages ahead overlap at the server.
    server.faults.delay = 0.2
    snapshot = scim(server, page_concurrency=3).fetch()
    assert len(snapshot.users) == 40
    assert 2 <= server.faults.most_in_flight <= 3


def test_scim_sequential_setting_sends_one_request_at_a_time(server: ScimServer) -> None:
    populate(server, users=30, groups=2)
    server.faults.delay = 0.05
    scim(server, page_concurrency=1).fetch()
    assert server.faults.most_in_flight == 1


def test_scim_429_mid_way_is_waited_out_and_lowers_the_concurrency(server: ScimServer) -> None:
    populate(server)
    expected = sequential(server)
    server.faults.throttle_start = 22  # the fourth page of users, fetched ahead
    server.faults.retry_after = "3"
    waits: list[float] = []
    with HttpClient({"Authorization": f"Bearer {server.token}"}, sleep=waits.append, concurrency=4) as client:
        snapshot = scim(server, page_concurrency=4, client=client).fetch()
        assert client.gate.limit == 2
    assert snapshot == expected
    assert waits == [3.0]
    assert server.faults.queries.count("startIndex=22&count=7") == 2


def test_scim_page_failing_for_good_leaves_the_cache_as_it_was(ctx: Context, server: ScimServer) -> None:
    populate(server)
    run_sync(ctx, scim(server))
    before = export_json(ctx)
    server.add_user("newcomer")
    server.faults.fail_start = 29
    with pytest.raises(SyncError) as caught:
        run_sync(ctx, scim(server))
    assert "startIndex=29" in str(caught.value) and "HTTP 500 after 5 attempts" in str(caught.value)
    assert export_json(ctx) == before


def test_scim_total_changing_between_concurrent_pages_is_refused(server: ScimServer) -> None:
    populate(server, users=30, groups=2)

    def add_one(number: int) -> None:
        if number == 3:
            server.add_user("latecomer")

    server.faults.before_list = add_one
    with pytest.raises(SyncError) as caught:
        scim(server, page_concurrency=4).fetch()
    assert "totalResults went from 30 to 31" in str(caught.value)


def test_scim_sync_deadline_holds_with_pages_in_flight(server: ScimServer) -> None:
    populate(server, users=60, groups=2)
    server.faults.delay = 0.3
    with pytest.raises(SyncError) as caught:
        scim(server, page_concurrency=4, sync_timeout=1.0).fetch()
    assert "time limit of 1 s" in str(caught.value)


def test_page_concurrency_is_a_source_setting_defaulting_to_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://idp.example.com/scim/v2"
    data = {
        "page_concurrency": 2,
        "sources": {"own": {"url": url, "page_concurrency": 6}, "plain": {"url": url}},
    }
    config = tmp_path / "gw.toml"
    config.write_text(tomli_w.dumps(data), encoding="utf-8")
    settings = load_settings(str(config))
    assert (settings.sources["own"].page_concurrency, settings.sources["plain"].page_concurrency) == (6, 2)
    monkeypatch.setenv("GROUPWARDEN_PAGE_CONCURRENCY", "3")
    assert load_settings(str(config)).sources["own"].page_concurrency == 3
    monkeypatch.delenv("GROUPWARDEN_PAGE_CONCURRENCY")
    config.write_text(tomli_w.dumps({"sources": {"own": {"url": url}}}), encoding="utf-8")
    own = load_settings(str(config)).sources["own"]
    assert own.page_concurrency == 4
    source = build_source(own)
    assert isinstance(source, ScimSource) and source.page_concurrency == 4
    source = build_source(SourceConfig("corp", "scim", url, page_concurrency=1))
    assert isinstance(source, ScimSource) and source.page_concurrency == 1
    monkeypatch.setenv("GROUPWARDEN_PAGE_CONCURRENCY", "0")
    with pytest.raises(BadInput) as caught:
        load_settings(str(config))
    assert str(caught.value) == "GROUPWARDEN_PAGE_CONCURRENCY must be a whole number >= 1"


def many_groups(people: int = 30, extra: int = 12) -> tuple[list[Any], list[Any]]:
    """The small organisation, with more groups than the pool has threads."""
    persons, teams = organisation(people)
    template = teams[-1]
    for n in range(extra):
        members = [p.id for p in persons[n::5]]
        teams.append(type(template)(f"x{n:02d}", f"extra-{n}", None, members))
    return persons, teams


@pytest.fixture
def okta() -> Iterator[OktaServer]:
    with start_okta_server(FakeClock()) as running:
        running.load(*many_groups())
        yield running


def okta_source(server: OktaServer, concurrency: int) -> OktaSource:
    return OktaSource(
        server.url, server.token, name="corp", sleep=lambda _s: None, page_concurrency=concurrency
    )


def test_okta_concurrent_listing_equals_the_sequential_one(okta: OktaServer) -> None:
    expected = okta_source(okta, 1).fetch()
    snapshot = okta_source(okta, 4).fetch()
    assert snapshot == expected
    assert len(snapshot.groups) == 17
    assert (
        sum(len(g.user_members) for g in snapshot.groups)
        == sum(len(g.user_members) for g in expected.groups)
        > 0
    )


def test_okta_member_listings_stay_within_the_pool(okta: OktaServer) -> None:
    counting = counted(okta, 0.1)
    snapshot = okta_source(okta, 3).fetch()
    assert len(snapshot.groups) == 17
    assert 2 <= counting.most_in_flight <= 3


def test_okta_sequential_setting_sends_one_request_at_a_time(okta: OktaServer) -> None:
    counting = counted(okta, 0.02)
    okta_source(okta, 1).fetch()
    assert counting.most_in_flight == 1


def test_okta_member_listing_failing_for_good_fails_the_fetch(okta: OktaServer) -> None:
    okta.faults.fail_path = "/groups/x05/users"
    with pytest.raises(SyncError) as caught:
        okta_source(okta, 4).fetch()
    assert "/api/v1/groups/x05/users" in str(caught.value) and "HTTP 500 after 5 attempts" in str(
        caught.value
    )


@pytest.fixture
def graph() -> Iterator[GraphServer]:
    with start_graph_server(FakeClock()) as running:
        persons, teams = many_groups()
        teams[0].groups.append("g02")
        running.load(persons, teams)
        yield running


def graph_source(server: GraphServer, concurrency: int) -> GraphSource:
    return GraphSource(
        TENANT,
        token=STATIC_TOKEN,
        name="corp",
        graph_url=server.url,
        sleep=lambda _s: None,
        page_size=4,
        page_concurrency=concurrency,
    )


def test_graph_concurrent_listing_equals_the_sequential_one(graph: GraphServer) -> None:
    expected = graph_source(graph, 1).fetch()
    snapshot = graph_source(graph, 4).fetch()
    assert snapshot == expected
    assert len(snapshot.groups) == 17
    eng = next(g for g in snapshot.groups if g.name == "eng")
    assert eng.group_members == ["g02"]


def test_graph_member_listings_stay_within_the_pool(graph: GraphServer) -> None:
    counting = counted(graph, 0.1)
    snapshot = graph_source(graph, 3).fetch()
    assert len(snapshot.groups) == 17
    assert 2 <= counting.most_in_flight <= 3


def test_graph_member_listing_failing_for_good_fails_the_fetch(graph: GraphServer) -> None:
    graph.faults.fail_path = "/groups/x07/members"
    with pytest.raises(SyncError) as caught:
        graph_source(graph, 4).fetch()
    assert "/v1.0/groups/x07/members" in str(caught.value)


class KeepAliveServer:
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open and notes each one's port."""

    def __init__(self, delay: float) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                owner.opened.append(self.client_address[1])
                try:
                    super().handle()
                finally:
                    owner.closed.append(self.client_address[1])

            def do_GET(self) -> None:
                time.sleep(delay)  # long enough for the requests sent side by side to overlap
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_requests_in_flight_keep_one_connection_each_and_close_closes_them_all() -> None:
    server = KeepAliveServer(0.05)
    try:
        client = HttpClient(concurrency=3, sleep=lambda _s: None)
        with client:

            def five_gets() -> None:
                for n in range(5):
                    client.get_json(f"{server.url}/page/{n}")

            threads = [threading.Thread(target=five_gets) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # 30 requests, at most 3 at once: each kept its connection for the next one.
            assert 2 <= len(set(server.opened)) <= 3
        for _ in range(200):  # the server notices a closed connection on its next read
            if len(server.closed) == len(server.opened):
                break
            time.sleep(0.05)
        assert sorted(server.closed) == sorted(server.opened)
        with pytest.raises(RuntimeError):
            client.get(f"{server.url}/after-close")
    finally:
        server.stop()
