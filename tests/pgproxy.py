"""A tiny asyncio TCP proxy in front of PostgreSQL that can take the database away.

The wallet under test connects to the proxy instead of the server; the test then
calls :meth:`PgProxy.cut` (every open connection is reset and the listening socket
is closed, so new connections are refused) and later :meth:`PgProxy.restore`
(listen again on the same port).  To the wallet this is a database that crashed
and came back; the machine's shared PostgreSQL server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit, urlunsplit


class PgProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; :meth:`cut` and :meth:`restore` make outages."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0
        """Client connections accepted so far."""
        self.cut_links = 0
        """Connections reset by :meth:`cut`."""
        self.outages: list[tuple[float, float | None]] = []
        """(cut, restored) in time.monotonic() seconds."""

    @classmethod
    def for_dsn(cls, dsn: str) -> PgProxy:
        parts = urlsplit(dsn)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432)

    def dsn(self, dsn: str) -> str:
        """``dsn`` with its host and port replaced by the proxy's."""
        parts = urlsplit(dsn)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@{self.host}:{self.port}" if user else f"{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def open_links(self) -> int:
        return len(self._links)

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> PgProxy:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        """Refuse new connections (stop listening), then reset every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.outages.append((time.monotonic(), None))
        links, self._links = list(self._links), set()
        for client, upstream in links:
            self.cut_links += 1
            for w in (client, upstream):
                if w is not None:
                    w.transport.abort()  # RST both ways: the database aborts any open transaction
        await asyncio.sleep(0)

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        assert self._server is None, "not cut"
        await self.start()
        start, _ = self.outages[-1]
        self.outages[-1] = (start, time.monotonic())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in list(self._links):
            for w in (client, upstream):
                if w is not None:
                    w.transport.abort()
        self._links.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self._links.add(link)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                writer.transport.abort()
                return
            if link not in self._links:  # cut while we were connecting upstream
                up_writer.transport.abort()
                writer.transport.abort()
                return
            self._links.discard(link)
            link = (writer, up_writer)
            self._links.add(link)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                if w is not None and not w.is_closing():
                    w.transport.abort()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()  # one side ended: end the other (after what it still has to send)
