"""How fast a header that claims 200000 x 200000 pixels is refused, and what it costs the worker.

    .venv/bin/python bench/hostile.py [--runs 5]

Prints the median time for the reader to refuse each header in this process, the median time
from the upload's 202 to `failed` through the whole stack (`plexzoom.run`, local folder, private
Redis), and the worker's summed RSS at rest and at its peak while refusing them.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stack import REPO, Stack, TreeSampler

sys.path.insert(0, str(REPO))  # the hand-built headers live with the tests that use them

from plexzoom.core.errors import ImageTooLarge
from plexzoom.core.readers import open_source
from tests.core.readers.hostile import png_claiming, tiff_claiming

HEADERS: dict[str, Callable[[], bytes]] = {
    "png": lambda: png_claiming(200_000, 200_000),
    "tiff": lambda: tiff_claiming(200_000, 200_000),
    "tiled tiff": lambda: tiff_claiming(200_000, 200_000, tiled=True),
}
MIB = 1024**2


def refuse_in_process(path: Path, runs: int) -> float:
    """Median seconds for open_source to refuse ``path``."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        try:
            open_source(path).close()
        except ImageTooLarge:
            times.append(time.monotonic() - start)
        else:
            raise RuntimeError(f"{path.name} was not refused")
    return statistics.median(times)


def refuse_through_stack(stack: Stack, path: Path, runs: int) -> float:
    """Median seconds from the upload's 202 to `failed`."""
    times = []
    for _ in range(runs):
        image_id, accepted = stack.upload(path)
        while True:
            body = stack.client.get(f"/v1/images/{image_id}").json()
            if body["status"] == "failed":
                times.append(time.monotonic() - accepted)
                break
            if body["status"] == "ready":
                raise RuntimeError(f"{path.name} was converted")
            time.sleep(0.01)
    return statistics.median(times)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="plexzoom-hostile-") as tmp:
        folder = Path(tmp)
        paths = {}
        for name, build in HEADERS.items():
            paths[name] = folder / name.replace(" ", "-")
            paths[name].write_bytes(build())
        for name, path in paths.items():
            seconds = refuse_in_process(path, runs)
            print(f"{name:10} header ({path.stat().st_size} bytes): reader refuses in "
                  f"{seconds * 1000:.2f} ms (median of {runs})")  # fmt: skip
        stack = Stack(folder / "data", {}, folder / "stack.log")
        try:
            worker = stack.worker_root()
            sampler = TreeSampler(worker, [], interval_s=0.01)
            at_rest, _count = sampler.tree_rss()
            with sampler:
                for name, path in paths.items():
                    seconds = refuse_through_stack(stack, path, runs)
                    print(f"{name:10} header: 202 -> failed in {seconds:.3f} s (median of {runs})")
            peak = sampler.peak_rss
            print(f"worker RSS: {at_rest / MIB:.0f} MiB at rest, {peak / MIB:.0f} MiB peak")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
