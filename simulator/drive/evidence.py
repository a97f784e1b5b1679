"""The run's evidence file: every retired transaction's record and exchanges, as JSON lines.

The ledger lets go of a player's closed rounds (:meth:`simulator.judge.ledger.Ledger.retire`) so a
soak of any length runs in constant memory; what a later look may want of them (each call, its
answers, timings and the state the ledger judged) is written here instead, one line per transaction
(:func:`simulator.judge.ledger.retired_record`).  Findings keep their own evidence in the report.
``croupier run`` (:mod:`simulator.run`) and ``croupier load`` (:mod:`loadtests.process`, a file per
Locust process) both write it, hence its place among the drivers.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Any

import orjson

BUFFER = 1 << 16
"""Bytes gathered before one write: a line per transaction would be a system call per round."""


GZIP_LEVEL = 1
"""zlib's fastest level: a soak's evidence shrinks several times over for a few µs per transaction."""


class EvidenceFile:
    """JSON lines appended to ``path`` (created, or emptied, when opened); gzip-compressed as they are written when
    the name ends in ``.gz`` — an 8-hour soak writes ~600 bytes per call, tens of GB uncompressed (``zcat`` or
    ``gzip.open`` reads it, a file cut short by a crash included, up to its last full block)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0
        self._f: IO[bytes] | gzip.GzipFile = (gzip.open(self.path, "wb", compresslevel=GZIP_LEVEL)  # noqa: SIM115 - open until close()
                              if self.path.suffix == ".gz"
                              else self.path.open("wb", buffering=BUFFER))

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self.lines += 1

    def close(self) -> None:
        self._f.close()


def shard_path(path: str, shard: tuple[int, int]) -> str:
    """A worker's own file when players are sharded over processes (``report.evidence.2.jsonl``)."""
    k, n = shard
    return path if n == 1 else _tagged(path, str(k))


def _tagged(path: str, tag: str) -> str:
    """``path`` with ``tag`` before its suffix (``a.jsonl`` → ``a.TAG.jsonl``, ``a.jsonl.gz`` → ``a.TAG.jsonl.gz``)."""
    p = Path(path)
    gz = p.suffix == ".gz"
    base = p.with_suffix("") if gz else p
    return str(base.with_name(f"{base.stem}.{tag}{base.suffix}")) + (".gz" if gz else "")


def beside(report: str) -> str:
    """The default evidence file beside a report file (``out/run.json`` → ``out/run.evidence.jsonl``)."""
    p = Path(report)
    return str(p.with_name(f"{p.stem}.evidence.jsonl"))


def of_node(report: str, node: str) -> str:
    """A Locust process's own file beside the load report (``out/summary.json`` → ``out/summary.evidence.w0.jsonl``):
    each process has its own players, hence its own ledger and file."""
    return _tagged(beside(report), node)
