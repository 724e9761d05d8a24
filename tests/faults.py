"""A fault-injecting HTTP proxy for tests: in front of an S3 server it answers 503 SlowDown and
drops connections for a while, which moto cannot do itself.

Every request gets a connection of its own upstream (the proxy adds ``Connection: close``), so
faults hit requests, not just the first request of a kept-alive connection. Reads and writes
each go through the fault pattern in turn, so the first write after ``start_faults`` is faulted
whatever the reads in between.
"""

import asyncio
import contextlib
import itertools
import re
import threading
from collections.abc import Iterator

from tests.servers import free_port

SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: 107\r\n\r\n"
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Slow"
    b" down</Message></Error>"
)


WRITES = ("PUT", "POST", "DELETE")
_WRITE_BYTES = tuple(method.encode() for method in WRITES)


class FaultProxy:
    """Listens on loopback and forwards to ``upstream``; faults only between ``start_faults``
    and ``stop_faults``."""

    def __init__(self, upstream_port: int, pattern: tuple[str, ...] = ("503", "drop", "pass")):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._upstream = upstream_port
        # One cycle for reads and one for writes of each service (the plexzoom-* name in the
        # User-Agent): a web process polling the image cannot take the "pass" turns a worker's
        # retries wait for, so each service's retries meet the pattern in order.
        self._pattern = pattern
        self._patterns: dict[tuple[bool, str], Iterator[str]] = {}
        self._faulting, self._matching = False, ""
        self.counts = {"503": 0, "drop": 0, "pass": 0}
        self.faulted: list[tuple[str, str]] = []  # (fault, request line) of each faulted request
        self.requests: list[str] = []  # the request line of every request (a recording proxy)
        self.agents: list[str] = []  # the plexzoom-* service each request named ("" if none)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def start_faults(self, matching: str = "") -> None:
        """Answer requests with the fault pattern from now on (only those whose request line
        contains ``matching``, when given)."""
        self._faulting, self._matching = True, matching

    def stop_faults(self) -> None:
        """Forward every request again."""
        self._faulting, self._matching = False, ""

    def stop(self) -> None:
        """Stop listening."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        started.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.requests.append(line)
        agent = re.search(rb"\bplexzoom-\w+", head)
        self.agents.append(agent.group().decode() if agent else "")
        faulting = self._faulting and self._matching in line
        fault = next(self._cycle(head)) if faulting else "pass"
        self.counts[fault] += 1
        if fault != "pass":
            self.faulted.append((fault, line))
        if fault == "drop":
            writer.transport.abort()  # a connection reset, mid-request
            return
        if fault == "503":
            writer.write(SLOW_DOWN)
            await _close(writer)
            return
        await self._forward(_with_connection_close(head), reader, writer)

    def _cycle(self, head: bytes) -> Iterator[str]:
        key = (head.startswith(_WRITE_BYTES), self.agents[-1])
        return self._patterns.setdefault(key, itertools.cycle(self._pattern))

    async def _forward(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        up_writer.write(head)
        upload = asyncio.ensure_future(_pipe(reader, up_writer))
        await _pipe(up_reader, writer)  # the server closes after its answer
        upload.cancel()
        await _close(up_writer)
        await _close(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def _with_connection_close(head: bytes) -> bytes:
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines[:-2], b"Connection: close", b"", b""])
