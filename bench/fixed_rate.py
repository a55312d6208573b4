"""An open-loop, fixed-rate HTTP load generator: latency at a given fraction of the maximum.

Debian's wrk (4.1) has no fixed-rate mode (that is wrk2's ``-R``), and a closed loop paced
with wrk's ``delay()`` hides queueing: a slow answer delays the next request rather than
showing up in the latency (coordinated omission). So this sends request ``i`` at
``start + i / rate`` whatever happened before, over at most ``connections`` keep-alive
connections, and measures each latency from the request's *scheduled* time: a request that
had to wait for a free connection counts its wait, as wrk2 does.

Minimal HTTP/1.1 on asyncio streams: a fixed body with per-request headers, answers read by
Content-Length (or to EOF when the server closes). Loopback only; no TLS.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FixedRateResult:
    rate: float
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    late_ms: float = 0.0  # how far behind schedule the last request was sent

    @property
    def sent(self) -> int:
        return len(self.latencies_ms) + self.errors

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[
            round(p * 10) - 1
        ]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer; (status, whether the connection stays open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()
        keep = False
    return status, keep


async def _run(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    duration_s: float,
    connections: int,
) -> FixedRateResult:
    result = FixedRateResult(rate=rate, duration_s=duration_s)
    total = int(rate * duration_s)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    next_index = 0

    async def connection_worker() -> None:
        nonlocal next_index
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while next_index < total:
            i = next_index
            next_index += 1
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(make_request(i))
                await writer.drain()
                status, keep = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                result.errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            finished = loop.time()
            result.latencies_ms.append((finished - scheduled) * 1000)
            result.statuses[status] += 1
            if i == total - 1:
                result.late_ms = max(0.0, (finished - scheduled) * 1000)
            if not keep:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection_worker() for _ in range(connections)))
    return result


def run_fixed_rate(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    rate: float,
    duration_s: float,
    connections: int,
) -> FixedRateResult:
    """Send ``rate * duration_s`` requests at a fixed rate; wait for every answer."""
    started = time.monotonic()
    run = _run(host, port, make_request, rate, duration_s, connections)
    try:
        # uvloop (installed with the bench extra's uvicorn[standard]) roughly halves the
        # generator's own CPU per request, so it keeps to schedule at thousands a second.
        import uvloop

        result = uvloop.run(run)
    except ImportError:
        result = asyncio.run(run)
    result.duration_s = time.monotonic() - started
    return result


def http_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
