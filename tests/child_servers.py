"""Test wallets served from a child process, so they run on another core than the checker that drives them.

A real wallet never shares the checker's GIL; wallets served from a thread of the test process would, and
their latency (and so the races a check can provoke) would depend on what the checker is doing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


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
