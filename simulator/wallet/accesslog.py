"""Access logs: one line per request, readable on a terminal, JSON for log pipelines.

Why two forms and a default that depends on where stderr goes: a wallet started
by hand in a shell (``croupier wallet serve &`` then ``croupier run …``) shares
the terminal with the run's progress bar, and thousands of JSON lines a second
would bury it — so on a terminal the access log is off unless asked for
(``--access-log``), and then it is one short readable line per request.  In a
pipe, a file or under a supervisor (Docker, systemd, CI) nobody reads it live
and a log collector wants JSON, so it stays on as one JSON object per line, as
it always was (``--no-access-log`` turns it off, ``--access-log-file PATH``
sends it to a file instead).

Why the JSON form bypasses :mod:`logging` and buffers: it is on by default, so
it runs on every call of a wallet under load.  Through ``logging`` a line cost a
record, a formatter and a ``write`` plus ``flush`` system call of its own — about
a tenth of the wallet's CPU per call (bench/README.md).  :class:`JsonLines` instead
appends each line to a buffer that goes out in one ``write`` when it holds 64 KiB
or 50 ms after its first line, and on exit.  A line is an observation, not a
record of money: what a ``kill -9`` can lose is at most the last 50 ms of lines,
never a transaction (those are committed before the answer is sent).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import time
from typing import IO, Any, Final, Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .http import LOG_INFO

Form = Literal["text", "json"]

ACCESS: Final = "croupier.access"
"""The access log's logger."""

RECORD = "croupier_access"
"""The attribute of a log record that carries the request's fields (a dict), for the formatters."""


FLUSH_BYTES: Final = 64 * 1024
FLUSH_S: Final = 0.05


class JsonLines:
    """JSON access lines to a file descriptor, buffered: one ``write`` per 64 KiB or per 50 ms.

    Used from the event loop's thread only (aiohttp calls the access logger there); without a
    running loop (a line logged outside one) it writes at once."""

    def __init__(self, fd: int, owned: bool = False) -> None:
        self.fd = fd
        self.owned = owned
        self.buf = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        atexit.register(self.close)

    def add(self, fields: dict[str, Any]) -> None:
        self.buf += orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
        if len(self.buf) >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        view = memoryview(self.buf)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # a closed stderr or a full disk: the lines are dropped, the wallet goes on
            pass
        finally:
            view.release()
            self.buf.clear()

    def close(self) -> None:
        self.flush()
        atexit.unregister(self.close)
        if self.owned:
            self.owned = False
            try:
                os.close(self.fd)
            except OSError:
                pass


_SINK: JsonLines | None = None
"""Where the ``croupier.access`` logger's JSON lines go directly, when :func:`configure_access` chose JSON."""


class AccessLogger(AbstractAccessLogger):
    """Collects method, path, status, latency and what the wallet decided (op, code, replay) per request;
    JSON lines go straight to :class:`JsonLines`, the readable form through the handler's formatter
    (:class:`TextFormatter`)."""

    @property
    def enabled(self) -> bool:
        """Off (``--no-access-log``): aiohttp then skips the call and its timing altogether."""
        return self.logger.isEnabledFor(logging.INFO)

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
        extra = request.get(LOG_INFO)
        if extra:
            record.update(extra)
        sink = _SINK
        if sink is not None and self.logger.name == ACCESS:
            sink.add(record)
            return
        self.logger.info("%s %s %s", record["method"], record["path"], record["status"], extra={RECORD: record})


JsonAccessLogger = AccessLogger
"""The name the servers used before the access log had a readable form."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, RECORD, None)
        return orjson.dumps(fields).decode() if fields is not None else record.getMessage()


class TextFormatter(logging.Formatter):
    """``19:50:01 POST /wallet/bet 200 1.2 ms  bet tx b1 INSUFFICIENT_FUNDS``: what a person scans."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, RECORD, None)
        if fields is None:
            return record.getMessage()
        return text_line(fields)


def text_line(fields: dict[str, Any]) -> str:
    """The readable line of one request (method, path, status, milliseconds, then the wallet's decision)."""
    clock = time.strftime("%H:%M:%S", time.localtime(float(fields.get("ts", time.time()))))
    line = f"{clock} {fields['method']} {fields['path']} {fields['status']} {float(fields['ms']):.1f} ms"
    extra = [str(fields["op"])] if "op" in fields else []
    if "tx_id" in fields:
        extra.append(f"tx {fields['tx_id']}")
    if "code" in fields:
        extra.append(str(fields["code"]))
    if fields.get("replay"):
        extra.append("replay")
    return line + ("  " + " ".join(extra) if extra else "")


def choose(access_log: bool | None, access_log_file: str | None, stream: IO[str] | None = None) -> Form | None:
    """The access log's form, or None for none: a file is JSON; asked for, text on a terminal and JSON
    elsewhere; not said, off on a terminal and JSON elsewhere; refused (``--no-access-log``), none."""
    if access_log_file:
        return "json"
    if access_log is False:
        return None
    out = sys.stderr if stream is None else stream
    tty = bool(getattr(out, "isatty", lambda: False)())
    if access_log is None:
        return None if tty else "json"
    return "text" if tty else "json"


def configure_access(access_log: bool | None = None, access_log_file: str | None = None) -> Form | None:
    """Set up the ``croupier.access`` logger as :func:`choose` decides; returns the form (None: off).
    A file that cannot be opened raises ``OSError``."""
    global _SINK
    form = choose(access_log, access_log_file)
    handler: logging.Handler = (logging.FileHandler(access_log_file, encoding="utf-8") if access_log_file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(TextFormatter() if form == "text" else JsonFormatter())
    access = logging.getLogger(ACCESS)
    for old in access.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if form is not None else logging.WARNING)
    if _SINK is not None:
        _SINK.close()
        _SINK = None
    if form == "json":
        # The handler stays for anyone logging to croupier.access by hand; AccessLogger writes past it.
        if access_log_file:
            _SINK = JsonLines(os.open(access_log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), owned=True)
        else:
            try:
                fd = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):  # a stream without a descriptor (captured): via logging
                return form
            sys.stderr.flush()
            _SINK = JsonLines(fd)
    return form


def configure(level: str = "info", access_log: bool | None = None, access_log_file: str | None = None) -> logging.Logger:
    """Log to stderr (the access log to ``access_log_file`` when given): access lines as :func:`choose`
    decides, everything else prefixed with its level.  A file that cannot be opened raises ``OSError``."""
    configure_access(access_log, access_log_file)
    root = logging.getLogger("croupier")
    if not root.handlers:
        other = logging.StreamHandler(sys.stderr)
        other.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(other)
    root.setLevel(level.upper())
    return logging.getLogger("croupier.access")
