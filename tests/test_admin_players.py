"""``GET /admin/players``: every store lists players in id order, pages with a keyset cursor, and
refuses a bad parameter with a 400 that changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ADMIN_TOKEN, STORE_KINDS, Served, make_store, serve_wallet

IDS = ["b", "a", "c-3", "c-10", "Z", "é", "ü", "日本", "a b"]


@pytest.fixture(params=STORE_KINDS)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    store = make_store(request.param, tmp_path)
    async with serve_wallet(store) as s:
        yield s


async def get(served: Served, token: str | None = ADMIN_TOKEN, **params: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with served.session.get(f"{served.base}/admin/players", params=params, headers=headers) as resp:
        return resp.status, await resp.json()


async def seed(served: Served) -> None:
    for i, pid in enumerate(IDS):
        await served.admin.create_player(pid, "EUR" if i % 2 else "USD", 100 * i)
    await served.admin.block("c-3")


async def test_lists_every_player_in_id_order(served: Served) -> None:
    assert await get(served) == (200, {"players": [], "next": None})
    await seed(served)
    status, page = await get(served)
    assert status == 200 and page["next"] is None
    assert [p["player_id"] for p in page["players"]] == sorted(IDS)
    by_id = {p["player_id"]: p for p in page["players"]}
    assert by_id["a"] == {"player_id": "a", "currency": "EUR", "balance": 100, "blocked": False}
    assert by_id["c-3"]["blocked"] is True and by_id["c-3"]["balance"] == 200
    assert all(type(p["balance"]) is int for p in page["players"])


async def test_pages_with_the_cursor(served: Served) -> None:
    await seed(served)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await served.admin.players(limit=2, after=after)
        assert len(page["players"]) <= 2
        seen += [p["player_id"] for p in page["players"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
        assert after == seen[-1]
    assert seen == sorted(IDS) and pages == 5
    # an exact fit: the last full page says there is no next one
    full = await served.admin.players(limit=len(IDS))
    assert full["next"] is None and len(full["players"]) == len(IDS)
    # a cursor need not be an existing id; past the end is an empty last page
    assert [p["player_id"] for p in (await served.admin.players(after="c"))["players"]][:1] == ["c-10"]
    assert await served.admin.players(after="\U0010ffff") == {"players": [], "next": None}
    # a player created behind the cursor is not seen; one ahead of it is
    first = await served.admin.players(limit=3)
    await served.admin.create_player("0", "EUR", 1)
    await served.admin.create_player("zz", "EUR", 1)
    rest = await served.admin.players(after=first["next"])
    assert "0" not in [p["player_id"] for p in rest["players"]]
    assert "zz" in [p["player_id"] for p in rest["players"]]


async def test_needs_the_admin_token(served: Served) -> None:
    await seed(served)
    for token in (None, "wrong"):
        status, body = await get(served, token)
        assert status == 401 and body["code"] == "UNAUTHORIZED"
        assert "players" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"}, {"limit": "1001"}, {"limit": "-1"}, {"limit": "1.5"}, {"limit": "ten"}, {"limit": ""},
        {"limit": "9" * 40}, {"limit": "١٢"}, {"after": ""}, {"after": "a\nb"}, {"after": "x" * 1025},
    ],
)
async def test_bad_parameters_are_400_and_change_nothing(served: Served, params: dict[str, str]) -> None:
    await seed(served)
    before = await get(served)
    status, body = await get(served, **params)
    assert status == 400 and body["code"] == "BAD_REQUEST" and body["message"]
    assert await get(served) == before


async def test_limit_bounds(served: Served) -> None:
    await seed(served)
    assert len((await served.admin.players(limit=1))["players"]) == 1
    assert len((await served.admin.players(limit=1000))["players"]) == len(IDS)
