"""Serving the metrics: ``/metrics`` on an aiohttp app, a listener of its own, and a pool of worker processes.

Several processes (``croupier wallet serve --workers N``, ``croupier run --workers N``) keep their values in
one directory (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``): the parent makes it
empty, puts it in its workers' environment (prometheus_client reads it before the first metric is made, so
it must be there when the worker starts), drops a worker's gauges once it ended, and removes the directory
at the end.  Whoever answers a scrape then adds every process's values up: any wallet worker (the kernel
picks one per connection), or ``croupier run``'s parent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .families import Metrics

__all__ = ["MULTIPROC_ENV", "WorkerPool", "exposition", "handler", "listen"]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def exposition(metrics: Metrics) -> bytes:
    """What a scrape gets: this process's metrics, or every worker's when they share a directory."""
    path = os.environ.get(MULTIPROC_ENV)
    return generate_latest(merged(path) if path else metrics.registry)


def merged(path: str) -> CollectorRegistry:
    """A registry that reads every worker's values in ``path`` when scraped."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return registry


def handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /metrics`` for an aiohttp app (the wallet's, the provider's, the proxy's control port)."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=exposition(metrics), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return get_metrics


class WorkerPool:
    """The parent's side of worker processes that count into one directory."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="croupier-metrics-")

    def env(self) -> dict[str, str]:
        """The workers' environment: this process's, with the directory."""
        return {**os.environ, MULTIPROC_ENV: self.path}

    def registry(self) -> CollectorRegistry:
        return merged(self.path)

    def ended(self, pid: int) -> None:
        """A worker ended: its gauges no longer count (its counters do: what it did stays done)."""
        mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def listen(host: str, port: int, registry: CollectorRegistry) -> Callable[[], None]:
    """Serve ``registry`` at ``http://host:port/metrics`` from a thread of prometheus_client's (a process with no
    HTTP server of its own); returns how to stop it.  ``OSError`` when the address cannot be had."""
    server, thread = start_http_server(port, host, registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
