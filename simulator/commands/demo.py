"""``croupier demo`` (what ``make demo`` runs): the whole product in one command.

Starts the reference wallet on a temporary SQLite file, plays the ``chaos``
scenario at it for about 20 seconds — every fault croupier knows, every
currency, live tables — then prints the run's summary and the wallet's own GGR
report.  A correct wallet ends with zero anomalies and exit code 0.

Interrupted (SIGINT, SIGTERM) it stops as ``croupier run`` does — play stops, what is in doubt is
settled within a bound (a second signal skips it), the reports asked for are written marked
``interrupted`` — and the wallet is shut down cleanly before it exits 130.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import tempfile
from pathlib import Path

import orjson
from aiohttp import web
from rich.console import Console

from ..drive.client import AdminClient
from ..play import scenario as scenarios
from ..report.html import render
from ..report.junit import junit_xml
from ..report.summary import ggr_table, print_summary
from ..run.result import RunOptions, result_json
from ..wallet.http import WalletConfig
from ..wallet.service import make_app
from ..wallet.sqlite import SQLiteStore
from .interrupt import EXIT_INTERRUPTED, Interrupts
from .runcmd import _progress, run_interruptible

GGR_READ_S = 5.0
"""The most the wallet's GGR report may take to read (an interrupted demo does not wait longer for it)."""


async def _demo(db: Path, name: str, duration: float, seed: int, console: Console,
                show_progress: bool, interrupts: Interrupts) -> tuple[dict[str, object], list[dict[str, object]], object]:
    secret, admin_token = secrets.token_hex(16), secrets.token_hex(16)
    app = make_app(SQLiteStore(db), WalletConfig(secret, admin_token))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    console.print(f"reference wallet on {base}/wallet (SQLite {db}); playing [bold]{name}[/] for {duration:g} s",
                  soft_wrap=True)
    scenario = dataclasses.replace(scenarios.load(name), duration_s=duration)
    options = RunOptions(scenario, f"{base}/wallet", secret, admin_url=base, admin_token=admin_token, seed=seed,
                         run_id=secrets.token_hex(3))
    progress, tick = _progress(console, duration, show_progress)
    try:
        if show_progress:
            options.on_tick = tick
        with progress:
            result = await run_interruptible(options, interrupts, console)
        import aiohttp

        ggr: list[dict[str, object]] = []
        if len(interrupts.received) < 2:  # a second signal: out now, without the GGR report
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=GGR_READ_S)) as session:
                    ggr = (await AdminClient(base, admin_token, session).ggr())["lines"]
            except (aiohttp.ClientError, TimeoutError) as exc:
                console.print(f"[yellow]croupier:[/] the wallet's GGR report could not be read: {type(exc).__name__}: {exc}",
                                  soft_wrap=True)
    finally:
        await runner.cleanup()  # the wallet stops cleanly, interrupted or not
    return result_json(result), ggr, result.stats


def run_demo(db: str | None = None, scenario: str = "chaos", duration: float = 20.0, seed: int = 1,
             json_path: str | None = None, junit_path: str | None = None, html_path: str | None = None) -> int:
    console = Console()
    with Interrupts() as interrupts, tempfile.TemporaryDirectory(prefix="croupier-demo-") as tmp:
        path = Path(db) if db else Path(tmp) / "wallet.db"
        report, ggr, _ = asyncio.run(_demo(path, scenario, duration, seed, console, True, interrupts))
        return _finish(report, ggr, console, json_path, junit_path, html_path)


def _finish(report: dict[str, object], ggr: list[dict[str, object]], console: Console,
            json_path: str | None, junit_path: str | None, html_path: str | None) -> int:
    interrupted = bool(report.get("interrupted"))
    if json_path:
        Path(json_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if junit_path:
        Path(junit_path).write_bytes(junit_xml(report))
    if html_path:
        Path(html_path).write_text(render({**report, "ggr": ggr}), encoding="utf-8")
    if not interrupted:
        console.print("Next: `croupier wallet serve` for a sandbox wallet, `croupier run SCENARIO --wallet URL` "
                      "against yours, `croupier scenarios` for the list.", soft_wrap=True)
    if ggr:
        console.print(ggr_table(ggr, "the wallet's own GGR report, all games"))
    print_summary(report, console)  # last: its final line is the verdict, what `| tail -1` and CI show
    if interrupted:
        return EXIT_INTERRUPTED
    if report["verdict"] == "error":
        return 2  # nothing could be tested: the same code as `croupier run`
    return 1 if report["verdict"] != "pass" or report["unsettled"] else 0
