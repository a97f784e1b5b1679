"""The run's evidence file: every retired transaction's record and exchanges, as JSON lines.

The ledger lets go of a player's closed rounds (:meth:`simulator.judge.ledger.Ledger.retire`) so a
soak of any length runs in constant memory; what a later look may want of them (each call, its
answers, timings and the state the ledger judged) is written here instead, one line per transaction
(:func:`simulator.judge.ledger.retired_record`).  Findings keep their own evidence in the report.
``croupier run`` (:mod:`simulator.run`) and ``croupier load`` (:mod:`loadtests.process`, a file per
Locust process) both write it, hence its place among the drivers.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson

BUFFER = 1 << 16
"""Bytes gathered before one write: a line per transaction would be a system call per round."""


class EvidenceFile:
    """JSON lines appended to ``path`` (created, or emptied, when opened)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0
        self._f: IO[bytes] = self.path.open("wb", buffering=BUFFER)

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self.lines += 1

    def close(self) -> None:
        self._f.close()


def shard_path(path: str, shard: tuple[int, int]) -> str:
    """A worker's own file when players are sharded over processes (``report.evidence.2.jsonl``)."""
    k, n = shard
    if n == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{k}{p.suffix}"))


def beside(report: str) -> str:
    """The default evidence file beside a report file (``out/run.json`` → ``out/run.evidence.jsonl``)."""
    p = Path(report)
    return str(p.with_name(f"{p.stem}.evidence.jsonl"))


def of_node(report: str, node: str) -> str:
    """A Locust process's own file beside the load report (``out/summary.json`` → ``out/summary.evidence.w0.jsonl``):
    each process has its own players, hence its own ledger and file."""
    p = Path(beside(report))
    return str(p.with_name(f"{p.stem}.{node}{p.suffix}"))
