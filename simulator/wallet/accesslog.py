"""Structured access logs: one JSON object per request, machine-readable for log pipelines."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class JsonAccessLogger(AbstractAccessLogger):
    """Writes method, path, status, latency and what the wallet decided (op, code, replay)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_s: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "ms": round(time_s * 1000, 3),
        }
        from .http import LOG_INFO

        extra = request.get(LOG_INFO)
        if extra:
            record.update(extra)
        self.logger.info(orjson.dumps(record).decode())


def configure(level: str = "info", access_log: bool = True) -> logging.Logger:
    """Log to stderr: JSON access lines as they are, everything else prefixed with its level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("croupier.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    root = logging.getLogger("croupier")
    if not root.handlers:
        other = logging.StreamHandler(sys.stderr)
        other.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(other)
    root.setLevel(level.upper())
    return access
