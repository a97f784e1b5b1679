"""The SQLite store's group commit when a call raises, and the buffered JSON access log.

Why: a batch runs without a savepoint per call (bench/README.md: they cost 3.5 % of the
wallet's time), so a call that raises must still not spoil the calls committed with it — the
batch is rolled back and run again with a savepoint per call — and what the failing call
wrote before raising must not survive.  The access log's JSON lines are buffered; every line
must still reach the file, whole and in order, by the time the wallet exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.wallet import accesslog
from simulator.wallet.records import PlayerRow
from simulator.wallet.sqlite import SQLiteRepo, SQLiteStore


class Boom(RuntimeError):
    pass


async def test_a_raising_call_does_not_spoil_its_batch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        def good(n: int) -> Callable[[SQLiteRepo], str]:
            def fn(repo: SQLiteRepo) -> str:
                repo.insert_player(PlayerRow(f"p{n}", "EUR", 100 * n, False), 0.0)
                return f"p{n}"
            return fn

        def bad(repo: SQLiteRepo) -> str:
            repo.insert_player(PlayerRow("half-done", "EUR", 1, False), 0.0)
            raise Boom("after a write")

        # The writer is held up by a slow call while the others queue, so they make one batch.
        busy = asyncio.ensure_future(store.run(lambda repo: time.sleep(0.3)))
        await asyncio.sleep(0.05)
        calls = [store.run(good(n)) for n in range(5)] + [store.run(bad)] + [store.run(good(n)) for n in range(5, 10)]
        batches = store.batches
        results = await asyncio.gather(*calls, return_exceptions=True)
        await busy
        assert store.batches - batches == 2  # the slow call's, then all eleven together
        assert [r for r in results if isinstance(r, Boom)] and len(results) == 11
        assert [r for r in results if not isinstance(r, Boom)] == [f"p{n}" for n in range(10)]
        for n in range(10):
            player = await store.get_player(f"p{n}")
            assert player is not None and player.balance == 100 * n
        assert await store.get_player("half-done") is None
    finally:
        await store.close()


async def test_buffered_json_lines_all_reach_the_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    sink = accesslog.JsonLines(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), owned=True)
    try:
        for i in range(3):
            sink.add({"n": i})
        assert path.read_text() == ""  # buffered, not yet written
        await asyncio.sleep(accesslog.FLUSH_S * 4)
        assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [0, 1, 2]  # the timer flushed
        big = "x" * 1000
        for i in range(3, 3 + accesslog.FLUSH_BYTES // 1000 + 2):
            sink.add({"n": i, "pad": big})
        written = path.read_text().splitlines()
        assert len(written) > 3  # a full buffer goes out at once, without waiting for the timer
    finally:
        sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["n"] for r in lines] == list(range(3 + accesslog.FLUSH_BYTES // 1000 + 2))  # whole, in order


@pytest.mark.parametrize("form", ["json", None])
def test_the_json_form_goes_to_the_buffer_and_off_means_off(tmp_path: Path, form: str | None) -> None:
    path = tmp_path / "a.jsonl"
    try:
        chosen = accesslog.configure_access(False if form is None else None, str(path) if form else None)
        assert chosen == form
        assert (accesslog._SINK is not None) == (form == "json")
        logger = accesslog.AccessLogger(logging.getLogger(accesslog.ACCESS), "")
        assert logger.enabled == (form == "json")
    finally:
        accesslog.configure_access(False, None)
    assert accesslog._SINK is None
