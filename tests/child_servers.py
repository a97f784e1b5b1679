"""Test wallets served from a child process, so they run on another core than the checker that drives them.

A real wallet never shares the checker's GIL; wallets served from a thread of the test process would, and
their latency (and so the races a check can provoke) would depend on what the checker is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from aiohttp import web


@contextlib.contextmanager
def serve_from_child(module: str, names: list[str]) -> Iterator[dict[str, str]]:
    """``python -m MODULE NAMES… --many`` prints {name: port} as one JSON line: yields {name: base URL}."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", module, *names, "--many"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} did not start (exit {proc.wait(10)})")
        yield {name: f"http://127.0.0.1:{port}" for name, port in json.loads(line).items()}
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def serve_apps_forever(apps: Mapping[str, web.Application], host: str = "127.0.0.1") -> None:
    """The child's side of :func:`serve_from_child`: each app on a free port, {name: port} printed as one
    JSON line, served until the parent terminates the process."""

    async def serve() -> None:
        runners: list[web.AppRunner] = []
        ports: dict[str, int] = {}
        for name, app in apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, 0).start()
            ports[name] = int(runner.addresses[0][1])  # the port the OS chose
            runners.append(runner)
        print(json.dumps(ports), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            for r in runners:
                await r.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def wallet_main(doc: str | None, names: list[str], port: int, secret: str, admin_token: str,
                make: Callable[[str, str, str], web.Application]) -> None:
    """``python -m tests.X [NAME…] [--port P] [--secret S] [--admin-token T] [--many]`` for a test wallet module:
    one wallet on ``port`` until interrupted, or (``--many``) every named one on a free port, for
    :func:`serve_from_child`.  ``make(name, secret, admin_token)`` builds a wallet by name; ``names[0]`` is
    the correct one."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    p.add_argument("wallet", nargs="*", default=[names[0]], choices=names)
    p.add_argument("--port", type=int, default=port)
    p.add_argument("--secret", default=secret)
    p.add_argument("--admin-token", default=admin_token)
    p.add_argument("--many", action="store_true",
                   help="serve every named wallet on a free port; print {name: port} as one JSON line")
    args = p.parse_args()
    chosen = args.wallet or [names[0]]
    if not args.many:
        web.run_app(make(chosen[0], args.secret, args.admin_token), host="127.0.0.1", port=args.port, print=None)
        return
    serve_apps_forever({n: make(n, args.secret, args.admin_token) for n in chosen})
