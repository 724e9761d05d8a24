"""Load on loopback: 200 concurrent tile readers (wrk) and 10 concurrent uploaders against the
stack as `make run` starts it, for PLEXZOOM_LOAD_SECONDS (default 60).

Every request must succeed and every upload must end ready; tile throughput and latency
percentiles are printed and written to artifacts/load.json.
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from tests.servers import Stack

pytestmark = pytest.mark.slow
SECONDS = int(os.environ.get("PLEXZOOM_LOAD_SECONDS", "60"))
READERS, UPLOADERS = 200, 10
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# wrk's summary in one line: requests, the four socket error counts, non-2xx, p50 and p99 (µs).
_DONE = """
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, e.connect,
    e.read, e.write, e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Uploads:
    """What the uploaders saw."""

    ids: list[str] = field(default_factory=list)
    to_ready_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def noise_png(seed: int, side: int) -> bytes:
    """A PNG of smooth noise (compresses like a photograph, not like a flat colour)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (side // 16, side // 16, 3), dtype=np.uint8)
    image = pyvips.Image.new_from_array(small, interpretation="srgb").resize(16)
    return bytes(image.pngsave_buffer(compression=1))


def tile_paths(dzi: str, width: int, height: int, tile: int = 254) -> list[str]:
    """Every tile of every level of a Deep Zoom pyramid, as paths (query string kept)."""
    url = httpx.URL(dzi)
    base = url.raw_path.decode().replace(".dzi", "_files")
    query = f"?{url.query.decode()}" if url.query else ""
    paths, level, w, h = [], (max(width, height) - 1).bit_length(), width, height
    while level >= 0:
        cols, rows = -(-w // tile), -(-h // tile)
        paths += [f"{base}/{level}/{c}_{r}.jpeg{query}" for c in range(cols) for r in range(rows)]
        level, w, h = level - 1, max(1, -(-w // 2)), max(1, -(-h // 2))
    return paths


def upload_until(base: str, n: int, until: float, seen: Uploads) -> None:
    """One uploader: upload an image, wait until it is ready, upload the next."""
    with httpx.Client(base_url=base, timeout=60) as client:
        seq = 0
        while time.monotonic() < until:
            seq += 1
            start = time.monotonic()
            try:
                files = {"file": (f"u{n}-{seq}.png", noise_png(1000 * n + seq, 512))}
                answer = client.post("/v1/images", files=files)
                if answer.status_code != 202:
                    seen.errors.append(f"upload: {answer.status_code} {answer.text[:200]}")
                    continue
                image_id = answer.json()["id"]
                seen.ids.append(image_id)
                status = wait_ready(client, image_id, start + 120)
            except httpx.HTTPError as exc:
                seen.errors.append(f"upload: {type(exc).__name__}: {exc}")
                continue
            if status == "ready":
                seen.to_ready_s.append(time.monotonic() - start)
            else:
                seen.errors.append(f"conversion of {image_id}: {status}")


def wait_ready(client: httpx.Client, image_id: str, deadline: float) -> str:
    """Poll an image's status until ready/failed or the deadline."""
    status = "queued"
    while time.monotonic() < deadline:
        answer = client.get(f"/v1/images/{image_id}")
        if answer.status_code != 200:
            return f"status {answer.status_code}"
        status = answer.json()["status"]
        if status in ("ready", "failed"):
            return str(status)
        time.sleep(0.2)
    return f"still {status} after 120 s"


def read_tiles(base: str, paths: list[str], script: Path) -> dict[str, int]:
    """wrk with READERS connections over random tiles for SECONDS; its one-line summary."""
    listing = ",\n".join(json.dumps(p) for p in paths)
    script.write_text(f"paths = {{\n{listing}\n}}\n{_DONE}")
    done = subprocess.run(
        ["wrk", "-t2", f"-c{READERS}", f"-d{SECONDS}s", "--timeout", "10s", "-s", str(script),
         base],
        capture_output=True, text=True, timeout=SECONDS + 60, check=True,
    )  # fmt: skip
    found = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    assert found, done.stdout + done.stderr
    names = ("requests", "connect", "read", "write", "timeout", "non_2xx", "p50_us", "p99_us")
    return dict(zip(names, map(int, found.group(1).split()), strict=True))


@pytest.fixture
def wrk() -> None:
    """wrk drives the readers (`make test` installs it)."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: make tools (or apt-get install wrk)")


@pytest.mark.usefixtures("wrk")
def test_tiles_and_uploads_under_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """200 tile readers and 10 uploaders for SECONDS: no error, every upload ready."""
    stack = Stack(tmp_path / "data", {}, tmp_path / "stack.log")  # private Redis, as make run
    try:
        answer = httpx.post(
            f"{stack.url}/v1/images", files={"file": ("big.png", noise_png(7, 4096))}, timeout=60
        )
        assert answer.status_code == 202, answer.text
        body = stack.wait_status(answer.json()["id"], ("ready",), timeout_s=300)
        paths = tile_paths(str(body["links"]["dzi"]), int(body["width"]), int(body["height"]))
        seen = Uploads()
        until = time.monotonic() + SECONDS
        uploaders = [
            threading.Thread(target=upload_until, args=(stack.url, n, until, seen))
            for n in range(UPLOADERS)
        ]
        for thread in uploaders:
            thread.start()
        tiles = read_tiles(stack.url, paths, tmp_path / "tiles.lua")
        for thread in uploaders:
            thread.join()
    finally:
        stack.stop()
    tile_errors = {k: tiles[k] for k in ("connect", "read", "write", "timeout", "non_2xx")}
    report = {
        "seconds": SECONDS,
        "readers": READERS,
        "uploaders": UPLOADERS,
        "tiles": tiles["requests"],
        "tiles_per_s": round(tiles["requests"] / SECONDS),
        "tile_p50_ms": tiles["p50_us"] / 1000,
        "tile_p99_ms": tiles["p99_us"] / 1000,
        "tile_errors": {
            k: v for k, v in tiles.items() if k not in ("requests", "p50_us", "p99_us")
        },
        "uploads": len(seen.ids),
        "upload_to_ready_p50_s": round(float(np.median(seen.to_ready_s or [np.nan])), 2),
        "upload_errors": seen.errors[:10],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(report, indent=1) + "\n")
    with capsys.disabled():
        print(f"\nload: {json.dumps(report)}")
    assert not any(tile_errors.values()), report
    assert seen.errors == []
    assert tiles["requests"] > READERS and len(seen.to_ready_s) >= UPLOADERS
