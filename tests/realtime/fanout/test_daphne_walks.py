"""daphne's walks over every connection run in slices (realtime/fanout/daphne_io.py).

At 10,000 connections daphne's ``application_checker`` and ``timeout_checker``
each held the event loop for 10-50 ms, every 1 and 2 s, and the ticks behind
them were late by as much (docs/benchmarks.md, "connection ladder").
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
from types import SimpleNamespace

import pytest

from realtime.fanout import daphne_io
from tests.live import daphne, free_port, server_env
from tests.realtime.fanout.test_keepalive import PING, frames
from tests.realtime.rawclient import RawClient


def fake_server(n: int) -> SimpleNamespace:
    return SimpleNamespace(connections={f"p{i}": {} for i in range(n)})


def test_a_round_visits_every_connection_once_over_its_slices():
    server = fake_server(95)
    visits: list[str] = []
    walk = daphne_io._SlicedWalk(
        server, "test", 2.0, 10, lambda s, p, d: visits.append(p)
    )
    sizes = []
    for _ in range(10):
        before = len(visits)
        walk.step()
        sizes.append(len(visits) - before)
    assert sorted(visits) == sorted(server.connections)
    assert max(sizes) == 10  # 95 connections over 10 slices
    assert walk.interval == pytest.approx(0.2)  # each one still every 2 s
    walk.step()  # the next round starts from the top
    assert visits[95:] == visits[:10]


def test_a_connection_gone_mid_round_is_skipped_and_a_new_one_waits_for_the_next():
    server = fake_server(4)
    visits: list[str] = []
    walk = daphne_io._SlicedWalk(
        server, "test", 1.0, 2, lambda s, p, d: visits.append(p)
    )
    walk.step()  # p0, p1
    del server.connections["p3"]
    server.connections["new"] = {}
    walk.step()  # p2 only: p3 is gone, "new" was not open when the round began
    assert visits == ["p0", "p1", "p2"]
    walk.step()
    walk.step()
    assert "new" in visits


def test_a_visit_that_raises_is_logged_and_the_walk_goes_on(caplog):
    server = fake_server(3)
    visits: list[str] = []

    def visit(s, protocol, details):
        if protocol == "p1":
            raise RuntimeError("boom")
        visits.append(protocol)

    walk = daphne_io._SlicedWalk(server, "test", 1.0, 1, visit)
    with caplog.at_level(logging.ERROR, logger="realtime.fanout.daphne_io"):
        walk.step()
    assert visits == ["p0", "p2"]
    assert "event=daphne_walk_failed walk=test" in caplog.text


class FakeProtocol:
    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []

    def handle_exception(self, exc: BaseException) -> None:
        self.exceptions.append(exc)


async def test_a_finished_application_of_a_closed_connection_is_reaped():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.set_result(None)
    protocol = FakeProtocol()
    details = {"application_instance": done, "disconnected": time.time()}
    server = SimpleNamespace(
        connections={protocol: details}, application_close_timeout=10
    )
    daphne_io._reap_application(server, protocol, details)
    assert server.connections == {}


async def test_an_application_outliving_the_close_timeout_is_cancelled():
    loop = asyncio.get_running_loop()
    running = loop.create_future()
    protocol = FakeProtocol()
    details = {"application_instance": running, "disconnected": time.time() - 11}
    server = SimpleNamespace(
        connections={protocol: details}, application_close_timeout=10
    )
    daphne_io._reap_application(server, protocol, details)
    assert running.cancelled()
    daphne_io._reap_application(server, protocol, details)  # the next round
    assert server.connections == {}


async def test_an_open_connection_keeps_running_and_hears_of_its_apps_failure():
    loop = asyncio.get_running_loop()
    running = loop.create_future()
    protocol = FakeProtocol()
    details = {"application_instance": running, "disconnected": None}
    server = SimpleNamespace(
        connections={protocol: details}, application_close_timeout=10
    )
    daphne_io._reap_application(server, protocol, details)
    assert not running.cancelled() and server.connections[protocol] is details
    error = ValueError("app failed")
    running.set_exception(error)
    daphne_io._reap_application(server, protocol, details)
    assert protocol.exceptions == [error]
    assert "application_instance" not in details
    assert protocol in server.connections  # until daphne sees the disconnect


def test_every_walk_internal_exists_on_the_installed_daphne():
    assert daphne_io.check_classes(daphne_io._WALK_CLASS_NAMES) == []


def test_a_missing_daphne_name_keeps_daphnes_own_walks_with_one_warning(
    monkeypatch, caplog
):
    from daphne.server import Server

    checker = Server.application_checker
    monkeypatch.setattr(
        daphne_io,
        "_WALK_CLASS_NAMES",
        (("daphne.server:Server", "no_such_checker"),),
    )
    with caplog.at_level(logging.WARNING, logger="realtime.fanout.daphne_io"):
        assert not daphne_io.slice_server_walks(20)
    assert "event=daphne_walks_unsliced" in caplog.text
    assert "no_such_checker" in caplog.text
    assert Server.application_checker is checker


def test_a_sliced_daphne_still_sends_keepalive_pings(live_simulator, migrated_sqlite):
    """Live: the sliced timeout walk (daphne's ``check_timeouts`` per protocol)
    pings every client, with a 1 s interval."""
    port = free_port()
    env = server_env(
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="walks-test-key",
        FMP_WS_URL=live_simulator.url,
        REALTIME_DAPHNE_WALK_SLICES="4",
    )
    server = daphne("daphne-walks", port, env, "--ping-interval", "1")
    clients: list[RawClient] = []
    try:
        server.wait_port(port)
        clients = [RawClient(port) for _ in range(8)]
        pinged: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pinged) < len(clients) and time.monotonic() < deadline:
            readable, _, _ = select.select([c.sock for c in clients], [], [], 0.5)
            for index, client in enumerate(clients):
                if client.sock in readable:
                    client.buffer += client.sock.recv(65536)
                    opcodes, client.buffer = frames(client.buffer)
                    if PING in opcodes:
                        pinged.add(index)
        assert len(pinged) == len(clients), server.log()
        assert "event=daphne_walks_sliced slices=4" in server.log()
    finally:
        for client in clients:
            client.sock.close()
        server.stop()
