"""Live events under load: 500 open /v1/events streams on one `make run` stack (local folder, two
web processes) while 20 images convert.

Latency of a delivery: from the record write that made the event (its ``updated`` time, this
machine's clock) to the moment a client read it, for every event of the 20 images on every
stream. Goal: p99 <= 1 s. Also the api processes' memory and CPU meanwhile (psutil, summed over
uvicorn and its web workers), and the webhook sender's latency to a receiver on loopback.
"""

import asyncio
import base64
import json
import statistics
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyvips
from stack import Stack, TreeSampler, cpu_seconds

STREAMS = 500
IMAGES = 20
GOAL_S = 1.0


def photo(path: Path, seed: int) -> Path:
    """A 2000 x 1500 PNG with some content (each a little different)."""
    image = pyvips.Image.gaussnoise(2000, 1500, sigma=40, mean=128 + seed).cast("uchar")
    image.write_to_file(str(path))
    return path


async def follow(url: str, ids: set[str], complete: asyncio.Event, got: list[tuple[str, float]],
                 opened: Any) -> None:  # fmt: skip
    """One stream: the delay of every event, until every image of ``ids`` was seen ready (the
    ids are known only once every upload has answered, after the first may be ready)."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=600)) as client,
        client.stream("GET", url) as answer,
    ):
        opened()
        finished: set[str] = set()
        async for line in answer.aiter_lines():  # heartbeats wake it up too
            if line.startswith("data: "):
                now = time.time()
                data = json.loads(line[6:])
                if "updated" in data:
                    delay = now - datetime.fromisoformat(data["updated"]).timestamp()
                    got.append((data["id"], delay))
                    if data.get("status") in ("ready", "failed"):
                        finished.add(data["id"])
            if complete.is_set() and finished >= ids:
                return


def web(stack: Stack) -> psutil.Process:
    for child in psutil.Process(stack.proc.pid).children():
        if any("uvicorn" in part for part in child.cmdline()):
            return child
    raise RuntimeError("the stack has no uvicorn process")


async def uploaded(stack: Stack, files: list[Path], ids: set[str], complete: asyncio.Event) -> None:
    """Upload every file at once; their ids go into ``ids``, then ``complete`` is set."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=120) as client:

        async def upload(path: Path) -> str:
            with path.open("rb") as f:
                answer = await client.post("/v1/images", files={"file": (path.name, f.read())})
            answer.raise_for_status()
            return str(answer.json()["id"])

        ids.update(await asyncio.gather(*(upload(p) for p in files)))
        complete.set()


async def measure(stack: Stack, files: list[Path]) -> dict[str, Any]:
    """Open the streams, upload the images, wait until every stream saw every image ready."""
    ids: set[str] = set()
    complete = asyncio.Event()
    seen: list[tuple[str, float]] = []
    opened = asyncio.Event()
    count = 0

    def one_opened() -> None:
        nonlocal count
        count += 1
        if count == STREAMS:
            opened.set()

    # The ids are known only after the uploads: streams filter on a set filled in place.
    tasks = [
        asyncio.create_task(follow(f"{stack.url}/v1/events", ids, complete, seen, one_opened))
        for _ in range(STREAMS)
    ]
    await asyncio.wait_for(opened.wait(), 120)
    with TreeSampler(web(stack), [], interval_s=0.2) as sampler:
        cpu_before, started = cpu_seconds(sampler.tree()), time.monotonic()
        await uploaded(stack, files, ids, complete)
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
        seconds = time.monotonic() - started
        cpu = cpu_seconds(sampler.tree()) - cpu_before
    delays = sorted(delay for image_id, delay in seen if image_id in ids)
    return {
        "streams": STREAMS,
        "images": len(ids),
        "deliveries": len(delays),
        "p50_s": statistics.median(delays),
        "p99_s": delays[int(0.99 * (len(delays) - 1))],
        "max_s": delays[-1],
        "seconds": seconds,
        "api_peak_rss": sampler.peak_rss,
        "api_cpu_cores": cpu / seconds,
    }


class Receiver:
    """A webhook receiver on loopback: when each delivery arrived, and its body."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((time.time(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delays(self) -> list[float]:
        """Seconds from each ready image's record write to its delivery."""
        return sorted(
            when - datetime.fromisoformat(body["data"]["updated"]).timestamp()
            for when, body in self.received
            if body.get("type") == "image.ready"
        )


def run(images: Path, work: Path) -> dict[str, Any]:
    print(f"\n== live events: {STREAMS} streams, {IMAGES} conversions ==", flush=True)
    images.mkdir(parents=True, exist_ok=True)
    files = [photo(images / f"events-{i}.png", i) for i in range(IMAGES)]
    receiver = Receiver()
    secret = "whsec_" + base64.b64encode(b"plexzoom-bench-webhook-secret-32").decode()
    env = {"PLEXZOOM_WEBHOOK_URLS": json.dumps([receiver.url]), "PLEXZOOM_WEBHOOK_SECRET": secret}
    stack = Stack(work / "events", env, work / "stack-events.log")
    try:
        result = asyncio.run(measure(stack, files))
        deadline = time.monotonic() + 60
        while len(receiver.delays()) < result["images"] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stack.stop()
        receiver.server.shutdown()
    hooks = receiver.delays()
    result |= {"goal_s": GOAL_S, "webhooks": len(hooks)}
    if hooks:
        result |= {"webhook_p50_s": statistics.median(hooks), "webhook_max_s": hooks[-1]}
    return result


def table(result: dict[str, Any]) -> list[str]:
    ok = "OK" if result["p99_s"] <= result["goal_s"] else "MISSED"
    hooks = (
        f"  webhooks: {result['webhooks']} image.ready deliveries to a loopback receiver, record "
        f"write -> received p50 {result['webhook_p50_s'] * 1000:.0f} ms, max "
        f"{result['webhook_max_s'] * 1000:.0f} ms"
        if result.get("webhooks")
        else "  webhooks: none received"
    )
    return [
        f"Live events: {result['streams']} open /v1/events streams, {result['images']} images "
        f"converting, {result['deliveries']} deliveries in {result['seconds']:.1f} s",
        f"  record write -> client: p50 {result['p50_s'] * 1000:.0f} ms, p99 "
        f"{result['p99_s'] * 1000:.0f} ms, max {result['max_s'] * 1000:.0f} ms "
        f"(goal p99 <= {result['goal_s']:.0f} s: {ok}); api processes: peak RSS "
        f"{result['api_peak_rss'] / 2**20:.0f} MiB, CPU {result['api_cpu_cores']:.2f} cores",
        hooks,
    ]
