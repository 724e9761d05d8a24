"""Storage-triggered processing: how soon each trigger starts a conversion, what a scan of objects
already taken costs, and many files through the inbox against the same files through the API.

    .venv/bin/python bench/inbox.py [--runs 5] [--files 500] [--only latency|scan|batch]

latency: object put -> `processing` (first seen by polling the API every 20 ms), median of
    --runs, for S3 events through SQS and through the webhook (moto's server for S3 and SQS,
    scanning off), for the scanner alone (every 2 s), and upload's 202 -> `processing` as the
    baseline: the stack's own fastest way in; also how long the webhook takes to answer.
scan: 10,000 objects of a watched SeaweedFS bucket, all taken already: seconds and storage
    calls of one scan, against a bare listing of the same prefix (the least any scan must do).
batch: --files small PNGs put into the local inbox at once -> all `ready`, and the same files
    uploaded through the API by 8 threads -> all `ready`; duplicates counted.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pyvips
from stack import REPO, S3_ENV, MotoServer, Stack

sys.path.insert(0, str(REPO))  # the SeaweedFS server and inbox helpers of the tests

from plexzoom.core.inbox import TAKEN, Claim, Inbox, scan_inbox, source_digest
from plexzoom.core.manifest import Source
from plexzoom.core.storage import S3Config, S3Storage
from tests.servers import SeaweedServer

HOOK_TOKEN = "bench-hook-token-0123456789"
SCAN_EVERY_S = 2


def png(n: int) -> bytes:
    """A small distinct PNG."""
    colour = [n % 256, (n * 7) % 256, 90]
    image = pyvips.Image.black(320, 240, bands=3).linear([1, 1, 1], colour)
    return bytes(image.cast("uchar").copy(interpretation="srgb").write_to_buffer(".png"))


def started(stack: Stack, key_suffix: str, put_at: float, timeout_s: float = 60) -> float:
    """Seconds from ``put_at`` until the image of the object is processing (or further)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for image in stack.client.get("/v1/images", params={"limit": 50}).json()["images"]:
            source = image.get("source") or {}
            if str(source.get("key", "")).endswith(key_suffix) and image["status"] in (
                "processing",
                "ready",
            ):
                return time.monotonic() - put_at
        time.sleep(0.02)
    raise RuntimeError(f"no conversion of {key_suffix} started within {timeout_s} s")


def latency(runs: int, work: Path) -> dict[str, float]:
    """Median put -> processing for SQS, the webhook and the scanner; upload -> processing."""
    moto = MotoServer(work / "moto.log")
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1", **_creds())
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    env = moto.env("events") | {
        "PLEXZOOM_SQS_QUEUE_URL": queue,
        "PLEXZOOM_SQS_WAIT_S": "20",
        "PLEXZOOM_S3_HOOK_TOKEN": HOOK_TOKEN,
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0",
    }
    results: dict[str, list[float]] = {"sqs": [], "webhook": [], "hook_answer": [], "upload": []}
    stack = Stack(work / "events", env, work / "events.log")
    try:
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", **_creds())
        _notify(s3, sqs, queue, "events", "inbox/sqs/")
        for n in range(runs):
            at = time.monotonic()
            s3.put_object(Bucket="events", Key=f"inbox/sqs/{n}.png", Body=png(n))
            results["sqs"].append(started(stack, f"sqs/{n}.png", at))
            at = time.monotonic()
            s3.put_object(Bucket="events", Key=f"inbox/hook/{n}.png", Body=png(n))
            posted = time.monotonic()
            stack.client.post(f"/hooks/s3?token={HOOK_TOKEN}", json=_event(f"inbox/hook/{n}.png"))
            results["hook_answer"].append(time.monotonic() - posted)
            results["webhook"].append(started(stack, f"hook/{n}.png", at))
            results["upload"].append(_upload_latency(stack, work, n))
    finally:
        stack.stop()
    results["scanner"] = _scanner_latency(moto, runs, work)
    moto.stop()
    return {name: statistics.median(values) for name, values in results.items()}


def _scanner_latency(moto: MotoServer, runs: int, work: Path) -> list[float]:
    """Put -> processing with only the scanner (every SCAN_EVERY_S)."""
    env = moto.env("scanned") | {"PLEXZOOM_INBOX_SCAN_INTERVAL_S": str(SCAN_EVERY_S)}
    stack = Stack(work / "scanned", env, work / "scanned.log")
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", **_creds())
    found = []
    try:
        for n in range(runs):
            at = time.monotonic()
            s3.put_object(Bucket="scanned", Key=f"inbox/{n}.png", Body=png(n))
            found.append(started(stack, f"inbox/{n}.png", at))
    finally:
        stack.stop()
    return found


def _upload_latency(stack: Stack, work: Path, n: int) -> float:
    """The baseline: upload's 202 -> processing."""
    path = work / f"upload-{n}.png"
    path.write_bytes(png(n))
    image_id, accepted = stack.upload(path)
    deadline = accepted + 60
    while time.monotonic() < deadline:
        if stack.client.get(f"/v1/images/{image_id}").json()["status"] in ("processing", "ready"):
            return time.monotonic() - accepted
        time.sleep(0.02)
    raise RuntimeError("the upload's conversion did not start")


def _notify(s3: Any, sqs: Any, queue: str, bucket: str, prefix: str) -> None:
    """Point the bucket's ObjectCreated events under ``prefix`` at the queue."""
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    rule = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    config = {"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"], "Filter": rule}
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [config]}
    )


def _event(key: str) -> dict[str, Any]:
    """The webhook body MinIO would send for ``key``."""
    s3 = {"bucket": {"name": "events"}, "object": {"key": key.replace(" ", "+"), "size": "1"}}
    return {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": s3}]}


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }


class Counting:
    """A store that counts the calls made to it, by method."""

    def __init__(self, inner: S3Storage) -> None:
        self.inner, self.calls = inner, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.inner, name)


def scan_cost(objects: int, work: Path) -> dict[str, Any]:
    """One scan of a watched bucket whose every object is taken, against a bare listing."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    server = SeaweedServer(work / "seaweedfs")
    try:
        ours, theirs = (
            S3Storage(S3Config(bucket=b, endpoint_url=server.endpoint, region="us-east-1"))
            for b in ("plexzoom", "scanner")
        )
        for store in (ours, theirs):
            store.ensure_bucket()
        watch = Inbox(prefix="out/", bucket="scanner", moves=False)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: _taken_object(ours, theirs, n), range(objects)))
        listing = _median_s(lambda: list(theirs.list_objects("out/")), 3)
        counting = Counting(ours)
        scan = _median_s(lambda: scan_inbox(counting, watch, lambda _i: None, theirs), 3)  # type: ignore[arg-type]
        return {
            "objects": objects,
            "scan_s": scan,
            "listing_s": listing,
            "ratio": scan / listing,
            "plexzoom_calls_per_scan": {k: v // 3 for k, v in counting.calls.items()},
        }
    finally:
        server.stop()


def _taken_object(ours: S3Storage, theirs: S3Storage, n: int) -> None:
    """An object of the watched bucket and the claim that says it was taken."""
    key = f"out/{n // 100}/{n}.png"
    theirs.put_bytes(key, b"x")
    found = theirs.stat(key)
    source = Source(bucket="scanner", key=key, etag=found.etag, size=found.size)
    claim = Claim(
        image_id="7ybqaaaaaaaaaaaaaaaaaaaaaa", key=key, source=source, claimed=found.modified
    )
    ours.put_bytes(TAKEN + f"{source_digest(source)}.json", claim.model_dump_json().encode())


def _median_s(action: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.monotonic()
        action()
        times.append(time.monotonic() - start)
    return statistics.median(times)


def batch(files: int, work: Path) -> dict[str, Any]:
    """``files`` PNGs put into the local inbox at once, and through the API, until all ready."""
    data = [png(n) for n in range(files)]
    stack = Stack(work / "inbox", {"PLEXZOOM_INBOX_SCAN_INTERVAL_S": "1"}, work / "inbox.log")
    try:
        folder = work / "inbox" / "inbox"
        folder.mkdir(parents=True)
        start = time.monotonic()
        for n, body in enumerate(data):
            (folder / f"{n}.png").write_bytes(body)
        inbox_s = _all_ready(stack, files) - start
        sources = [i["source"]["key"] for i in _images(stack)]
        duplicates = len(sources) - len(set(sources))
    finally:
        stack.stop()
    stack = Stack(work / "api", {}, work / "api.log")
    try:
        paths = []
        for n, body in enumerate(data):
            paths.append(work / f"api-{n}.png")
            paths[-1].write_bytes(body)
        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(stack.upload, paths))
        api_s = _all_ready(stack, files) - start
    finally:
        stack.stop()
    return {"files": files, "inbox_s": inbox_s, "api_s": api_s, "ratio": inbox_s / api_s,
            "images": len(sources), "duplicates": duplicates}  # fmt: skip


def _images(stack: Stack) -> list[dict[str, Any]]:
    """Every image of the stack (all pages)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = stack.client.get("/v1/images", params=params).json()
        found += page["images"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _all_ready(stack: Stack, count: int, timeout_s: float = 3600) -> float:
    """The monotonic time when ``count`` images are ready (polled every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        images = _images(stack)
        if len(images) >= count and all(i["status"] == "ready" for i in images):
            return time.monotonic()
        time.sleep(0.5)
    raise RuntimeError(f"not all {count} images were ready within {timeout_s} s")


def main() -> None:
    """Run the chosen parts and print their figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--only", choices=("latency", "scan", "batch"), action="append")
    args = parser.parse_args()
    parts = args.only or ["latency", "scan", "batch"]
    with tempfile.TemporaryDirectory(prefix="plexzoom-bench-inbox-") as scratch:
        work = Path(scratch)
        for part in parts:
            (work / part).mkdir()
        if "latency" in parts:
            print("latency, median s:", json.dumps(latency(args.runs, work / "latency")))
        if "scan" in parts:
            print("scan:", json.dumps(scan_cost(args.objects, work / "scan")), flush=True)
        if "batch" in parts:
            print("batch:", json.dumps(batch(args.files, work / "batch")), flush=True)


if __name__ == "__main__":
    main()
