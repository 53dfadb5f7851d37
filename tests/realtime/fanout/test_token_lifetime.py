"""A connection token bounds the connection it opened (issue 27; docs/protocol.md
"Token lifetime"): ``token_expiring`` ahead of ``exp``, ``refresh`` with a later
token of the same ``sub``, close 4001 at ``exp`` otherwise. Over a real daphne
fed by the simulator; DRF-token and anonymous connections are unaffected, and the
Python client's ``token_provider`` refreshes by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websockets
from fmpsite_client import PriceStream, PriceUpdate

from realtime.fanout.closecodes import CLOSE_TOKEN_EXPIRED
from realtime.fanout.tokenlife import warn_delay
from tests.live import LiveProduct, async_wait_until, start_product
from tests.realtime.wsclient import next_message, subscribe

SECRET = "token-lifetime-secret-" + "y" * 20


def token(sub: str = "crm-1", exp_in: float = 5, secret: str = SECRET) -> str:
    return jwt.encode(
        {"sub": sub, "exp": int(time.time() + exp_in)}, secret, algorithm="HS256"
    )


def exp_of(tok: str) -> int:
    return jwt.decode(tok, options={"verify_signature": False})["exp"]


@pytest.fixture(scope="module")
def server(migrated_sqlite: str) -> Iterator[LiveProduct]:
    with start_product(
        "daphne-token-life",
        simulator={"rate": 50.0, "seed": 5, "heartbeat_interval": 1.0},
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="token-life-key",
        REALTIME_CONNECTION_TOKEN_SECRET=SECRET,
    ) as product:
        yield product


async def open_with(server: LiveProduct, tok: str):
    ws = await websockets.connect(f"{server.ws_url}?token={tok}")
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert greeting["type"] == "connected", greeting
    return ws


async def closed_code(ws, within: float = 60) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_the_warning_comes_30_s_ahead_or_at_half_life() -> None:
    assert warn_delay(300) == 270
    assert warn_delay(5) == 2.5
    assert warn_delay(-1) == 0


async def test_an_unrefreshed_token_is_warned_then_closed_4001_at_exp(
    server: LiveProduct,
) -> None:
    tok = token(exp_in=5)
    ws = await open_with(server, tok)
    await subscribe(ws, ["TKLA"])
    warning = await next_message(ws, "token_expiring", 60)
    assert 0 < warning["expires_in"] <= 3, warning
    assert await closed_code(ws) == CLOSE_TOKEN_EXPIRED
    assert time.time() >= exp_of(tok) - 0.5
    assert "event=ws_token_expired" in server.log()


async def test_a_refreshed_connection_stays_open_and_keeps_receiving(
    server: LiveProduct,
) -> None:
    tok = token(exp_in=5)
    ws = await open_with(server, tok)
    await subscribe(ws, ["TKLB"])
    await next_message(ws, "token_expiring", 60)
    await ws.send(json.dumps({"action": "refresh", "token": token(exp_in=60)}))
    ack = await next_message(ws, "token_refreshed", 60)
    assert 50 < ack["expires_in"] <= 60, ack
    # Well past the first token's exp, updates still arrive.
    await async_wait_until(lambda: time.time() > exp_of(tok) + 2, 60, "the old exp")
    update = await next_message(ws, "price_update", 60, symbol="TKLB")
    assert update["symbol"] == "TKLB"
    await ws.close()


@pytest.mark.parametrize(
    "bad, reason",
    [
        (lambda: token(sub="someone-else", exp_in=60), "token_other_subject"),
        (
            lambda: token(exp_in=60, secret="another-secret-" + "z" * 20),
            "bad_signature",
        ),
        (lambda: token(exp_in=2), "token_not_later"),
    ],
    ids=["other-sub", "bad-signature", "earlier-exp"],
)
async def test_a_bad_refresh_is_refused_and_the_deadline_stands(
    server: LiveProduct, bad: Any, reason: str
) -> None:
    tok = token(exp_in=6)
    ws = await open_with(server, tok)
    await ws.send(json.dumps({"action": "refresh", "token": bad()}))
    error = await next_message(ws, "error", 60)
    assert error["code"] == "token_refused" and reason in error["message"], error
    await ws.send(json.dumps({"action": "ping"}))
    await next_message(ws, "pong", 60)  # still open after the refusal
    assert await closed_code(ws) == CLOSE_TOKEN_EXPIRED
    assert time.time() >= exp_of(tok) - 0.5


async def test_connections_without_a_connection_token_ignore_refresh(
    server: LiveProduct,
) -> None:
    ws = await websockets.connect(server.ws_url)
    await next_message(ws, "connected", 60)
    await ws.send(json.dumps({"action": "refresh", "token": token()}))
    error = await next_message(ws, "error", 60)
    assert error["code"] == "bad_request", error
    await ws.close()


async def test_the_python_client_refreshes_through_its_token_provider(
    server: LiveProduct,
) -> None:
    minted: list[str] = []

    async def provider() -> str:
        minted.append(token(exp_in=6))
        return minted[-1]

    async with PriceStream(server.ws_url, token_provider=provider) as stream:
        await stream.subscribe(["TKLC"])
        first_exp = None
        async for message in stream:
            if isinstance(message, PriceUpdate):
                first_exp = first_exp or exp_of(minted[0])
                if time.time() > first_exp + 8:  # past two tokens' lifetimes
                    break
        assert len(minted) >= 3, minted  # the connect, then refreshes
        assert stream.connections == 1, "the connection was never closed"
        assert CLOSE_TOKEN_EXPIRED not in stream.close_codes
