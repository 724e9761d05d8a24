"""Scale on one machine: tiles/s with 1 and 2 tile processes, conversions per minute with 1 and 2
worker processes (this machine has 2 cores: what a second process adds here is what the second
core gives, and how much the two share)."""

import os
import statistics
import time
from pathlib import Path
from typing import Any

import psutil
from images import ensure_image
from stack import S3_ENV, Stack, stop_process
from tiles import WARMUP_PASSES, convert_once, measured, read_pyramid, start_tiles_alone

CONVERSIONS = 12  # images per worker run: several rounds for 1 and for 2 processes


def tiles_scaling(tif: Path, work: Path, duration_s: float, reps: int) -> dict[str, Any]:
    """The tile service alone with 1 and 2 processes on one pyramid, warm, runs alternating."""
    print("\n== scale: tile service alone, 1 vs 2 processes ==", flush=True)
    data = work / "scale-tiles"
    dzi = convert_once(data, {}, tif, work / "scale-stack.log")
    servers = {}
    try:
        for n in (1, 2):
            proc, base = start_tiles_alone(data, dzi, work / f"scale-{n}.log", n)
            pyramid = read_pyramid(base + dzi)
            servers[n] = (proc, pyramid, {"web": psutil.Process(proc.pid)})
            text = f"{n} process(es) warm-up ({WARMUP_PASSES} passes)"
            measured(pyramid, "warmup", 0, servers[n][2], text, work)
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(reps):
            for n, (_proc, pyramid, watch) in servers.items():
                text = f"{n} process(es) warm ({duration_s:.0f} s)"
                runs[n].append(measured(pyramid, "random", duration_s, watch, text, work))
    finally:
        for proc, _pyramid, _watch in servers.values():
            stop_process(proc)
    medians = {n: statistics.median(r["tiles_per_s"] for r in rows) for n, rows in runs.items()}
    return {"tiles_per_s": medians, "ratio": medians[2] / medians[1], "runs": runs}


def conversions_scaling(work: Path, reps: int) -> dict[str, Any]:
    """make run with 1 and 2 worker processes: CONVERSIONS 4096² images uploaded at once, timed
    from the first upload's answer to the last `ready`."""
    print("\n== scale: conversions per minute, 1 vs 2 worker processes ==", flush=True)
    tif = ensure_image(work.parent / "images", 4096)
    per_minute: dict[int, list[float]] = {1: [], 2: []}
    for rep in range(reps):
        for n in (1, 2):
            data = work / f"scale-convert-{n}-{rep}"
            env = {"PLEXZOOM_WORKER_PROCESSES": str(n)}
            stack = Stack(data, env, work / f"scale-convert-{n}.log")
            try:
                started = time.monotonic()
                ids = [stack.upload(tif)[0] for _ in range(CONVERSIONS)]
                for image_id in ids:
                    stack.wait_ready(image_id, timeout_s=900, poll_s=0.1)
                seconds = time.monotonic() - started
            finally:
                stack.stop()
            per_minute[n].append(CONVERSIONS / seconds * 60)
            print(f"    {n} worker process(es): {CONVERSIONS} in {seconds:.1f} s", flush=True)
    medians = {n: statistics.median(v) for n, v in per_minute.items()}
    return {"per_minute": medians, "ratio": medians[2] / medians[1], "runs": per_minute}


def run(tif: Path, work: Path, duration_s: float, reps: int) -> dict[str, Any]:
    """Both measurements."""
    return {
        "tiles": tiles_scaling(tif, work, duration_s, reps),
        "conversions": conversions_scaling(work, reps),
        "requests": requests_per_conversion(ensure_image(work.parent / "images", 4096), work),
    }


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    tiles, conv = result["tiles"], result["conversions"]
    return [
        "Scale on this machine (2 cores), medians",
        f"  tile service alone, warm: 1 process {tiles['tiles_per_s'][1]:.0f} tiles/s, "
        f"2 processes {tiles['tiles_per_s'][2]:.0f} tiles/s ({tiles['ratio']:.2f}x)",
        f"  conversions of 4096² images: 1 worker process {conv['per_minute'][1]:.1f}/min, "
        f"2 processes {conv['per_minute'][2]:.1f}/min ({conv['ratio']:.2f}x)",
        f"  one 4096² upload: S3 requests {result['requests']['upload']}",
        f"  its conversion: S3 requests {result['requests']['conversion']}, "
        f"image events {result['requests']['events']}",
    ]


def requests_per_conversion(tif: Path, work: Path) -> dict[str, Any]:
    """S3 requests (by operation) and image events of one upload and its conversion, counted on
    the client: plexzoom's core functions on moto's server, in this process."""
    from collections import Counter

    import redis
    from stack import MotoServer

    from plexzoom.core import keys
    from plexzoom.core.convert import ConvertOptions, convert_image
    from plexzoom.core.eventlog import EventingStorage, EventLog
    from plexzoom.core.formats import TIFF
    from plexzoom.core.images import start_image, submit_image
    from plexzoom.core.storage import S3Config, S3Storage

    print("\n== scale: S3 requests and events of one conversion ==", flush=True)
    moto = MotoServer(work / "scale-moto.log")
    try:
        os.environ.update(S3_ENV)
        s3 = S3Storage(S3Config(bucket="scale", endpoint_url=moto.endpoint, region="us-east-1"))
        s3.ensure_bucket()
        calls: Counter[str] = Counter()
        s3.client.meta.events.register(
            "before-call.s3", lambda model, **_: calls.update([model.name])
        )
        published: list[str] = []

        class Counting(EventLog):
            def publish(self, kind: str, data: dict[str, Any]) -> str:
                published.append(kind)
                return "0-0"

        storage = EventingStorage(s3, Counting(redis.Redis()))  # never reaches Redis
        manifest = start_image(storage, tif.name)
        storage.upload_file(keys.original_key(manifest.id), tif)
        submit_image(storage, manifest, TIFF, tif.stat().st_size, lambda _id: None)
        upload = dict(calls)
        calls.clear()
        convert_image(storage, manifest.id, ConvertOptions(progress_interval_s=1.0))
        conversion = dict(calls)
    finally:
        moto.stop()
    result = {"upload": upload, "conversion": conversion, "events": len(published)}
    print(f"    upload: {upload}\n    conversion: {conversion}\n    events: {len(published)}")
    return result
