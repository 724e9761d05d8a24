"""Measure the memory and CPU the Kubernetes requests and limits are set from.

Starts the api, the tile service and a convert worker alone (``python -m plexzoom.<service>``,
one process each, as the manifests run them) on a temporary data folder and Redis database 9,
reads each process tree's RSS (psutil, every 0.2 s) idle and under a short load, and prints
the figures. Run from the repository: ``.venv/bin/python deploy/k8s/measure.py``.

Load: four concurrent uploads of a 8192x8192 RGB noise TIFF (192 MiB each, streamed) while
16 threads poll the api; then 16 threads fetching tiles of the converted images for 20 s.
"""

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pyvips

KEY, SECRET = "measure-key-0123456789", "measure-token-secret-0123456789"
REDIS_URL = os.environ.get("MEASURE_REDIS_URL", "redis://127.0.0.1:6379/9")
MIB = 1024 * 1024


def tree_rss(pid: int) -> int:
    """RSS of a process and all its children, in bytes (shared pages counted in each)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


class Sampler(threading.Thread):
    """Peak tree RSS of each named process while a phase runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peaks, self.running = pids, dict.fromkeys(pids, 0), True

    def run(self) -> None:
        """Sample every 0.2 s until stopped."""
        while self.running:
            for name, pid in self.pids.items():
                self.peaks[name] = max(self.peaks[name], tree_rss(pid))
            time.sleep(0.2)

    def stop(self) -> dict[str, int]:
        """Stop sampling and return the peaks."""
        self.running = False
        self.join()
        return self.peaks


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process tree so far."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m module`` with these settings, in a session of its own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLEXZOOM_", "PROMETHEUS"))}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=base | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str) -> None:
    """Wait until ``url`` answers 200."""
    for _ in range(300):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def upload(api: str, image: Path) -> str:
    """Upload one file (streamed) and return the image id."""
    with image.open("rb") as body:
        reply = httpx.post(
            f"{api}/v1/images",
            files={"file": ("noise.tif", body, "image/tiff")},
            headers={"authorization": f"Bearer {KEY}"},
            timeout=300,
        )
    reply.raise_for_status()
    return str(reply.json()["id"])


def poll(api: str, ids: list[str], stop: threading.Event) -> None:
    """Read image records and /healthz until told to stop."""
    with httpx.Client(headers={"authorization": f"Bearer {KEY}"}, timeout=10) as client:
        while not stop.is_set():
            for image_id in ids:
                client.get(f"{api}/v1/images/{image_id}")
            client.get(f"{api}/v1/images?limit=20")
            client.get(f"{api}/healthz")


def tile_urls(api: str, image_id: str) -> list[str]:
    """Every tile URL of the image's pyramid (token included)."""
    record = httpx.get(
        f"{api}/v1/images/{image_id}", headers={"authorization": f"Bearer {KEY}"}
    ).json()
    dzi = record["links"]["dzi"]
    path, _, query = dzi.partition("?")
    size = int(re.search(r'TileSize="(\d+)"', httpx.get(dzi).text).group(1))  # type: ignore[union-attr]
    urls, width, height, level = [], record["width"], record["height"], 13
    while level >= 0:
        cols, rows = -(-width // size), -(-height // size)
        for col in range(cols):
            for row in range(rows):
                urls.append(f"{path[:-4]}_files/{level}/{col}_{row}.jpeg?{query}")
        width, height, level = -(-width // 2), -(-height // 2), level - 1
    return urls


def fetch_tiles(urls: list[str], until: float) -> int:
    """Fetch tiles in turn until the deadline; returns how many."""
    count = 0
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < until:
            for url in urls:
                client.get(url).raise_for_status()
                count += 1
                if time.monotonic() >= until:
                    break
    return count


def main() -> None:
    """Start the three services, measure, print, stop them."""
    folder = Path(tempfile.mkdtemp(prefix="plexzoom-measure-"))
    image = folder / "noise.tif"
    pyvips.Image.gaussnoise(8192, 8192).cast("uchar").bandjoin([128, 64]).tiffsave(
        str(image), tile=True, compression="none"
    )
    common = {
        "PLEXZOOM_DATA_DIR": str(folder / "data"),
        "PLEXZOOM_REDIS_URL": REDIS_URL,
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_TOKEN_SECRET": SECRET,
        "PLEXZOOM_PROCESSES": "1",
        "PLEXZOOM_ACCESS_LOG": "false",
    }
    api, tiles = "http://127.0.0.1:18400", "http://127.0.0.1:18401"
    procs = {
        "api": start(
            "plexzoom.api",
            common | {"PLEXZOOM_PORT": "18400", "PLEXZOOM_TILES_URL": tiles},
            folder / "api.log",
        ),
        "tiles": start("plexzoom.tiles", common | {"PLEXZOOM_PORT": "18401"}, folder / "tiles.log"),
        "worker": start(
            "plexzoom.worker",
            common
            | {"PLEXZOOM_WORKER_ROLE": "convert", "PLEXZOOM_METRICS_PORT": "18402"}
            | {"dramatiq_queue_prefetch": "1", "PLEXZOOM_CONVERT_MEMORY_MB": "8192"},
            folder / "worker.log",
        ),
        "maintain": start(
            "plexzoom.worker",
            common | {"PLEXZOOM_WORKER_ROLE": "maintain", "PLEXZOOM_METRICS_PORT": "18403"},
            folder / "maintain.log",
        ),
    }
    pids = {name: proc.pid for name, proc in procs.items()}
    try:
        for url in (f"{api}/healthz", f"{tiles}/healthz", "http://127.0.0.1:18402/metrics"):
            wait_ready(url)
        time.sleep(10)  # spare conversion child started, imports settled
        idle = {name: tree_rss(pid) for name, pid in pids.items()}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        sampler = Sampler(pids)
        sampler.start()
        stop = threading.Event()
        t0 = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            pollers = [pool.submit(poll, api, [], stop) for _ in range(16)]
            ids = list(pool.map(lambda _: upload(api, image), range(4)))
            upload_s = time.monotonic() - t0
            stop.set()
            for poller in pollers:
                poller.result()
        api_cpu = (cpu_seconds(pids["api"]) - cpu0["api"]) / upload_s
        for image_id in ids:
            while True:
                status = httpx.get(
                    f"{api}/v1/images/{image_id}", headers={"authorization": f"Bearer {KEY}"}
                ).json()["status"]
                if status in ("ready", "failed"):
                    break
                time.sleep(0.5)
        convert_s = time.monotonic() - t0
        urls = [url for image_id in ids for url in tile_urls(api, image_id)]
        cpu1, t1 = cpu_seconds(pids["tiles"]), time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            counts = list(pool.map(lambda n: fetch_tiles(urls[n::16], t1 + 20), range(16)))
        tiles_cpu = (cpu_seconds(pids["tiles"]) - cpu1) / (time.monotonic() - t1)
        peaks = sampler.stop()
        print(f"statuses: {status}; uploads {upload_s:.1f} s; all converted {convert_s:.1f} s")
        print(f"tiles served in 20 s: {sum(counts)}")
        for name in pids:
            print(f"{name:9} idle {idle[name] / MIB:7.0f} MiB   peak {peaks[name] / MIB:7.0f} MiB")
        print(f"api CPU while uploading: {api_cpu:.2f} cores; tiles under load: {tiles_cpu:.2f}")
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, 15)
        for proc in procs.values():
            proc.wait(timeout=30)
        print(f"logs in {folder}")


if __name__ == "__main__":
    main()
