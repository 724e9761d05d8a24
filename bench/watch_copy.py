"""What taking a watched object costs: a server-side copy into plexzoom's bucket, against the
download every conversion makes anyway (the reference alternative would skip only the copy).

    .venv/bin/python bench/watch_copy.py [--mib 64 256] [--runs 3]

On SeaweedFS (`weed mini`, started here on loopback ports): median seconds to copy an object
of each size with plexzoom's conditional managed copy, and to download it as the worker does.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the SeaweedFS server of the tests

from plexzoom.core.storage import S3Config, S3Storage  # noqa: E402
from tests.servers import SeaweedServer  # noqa: E402


def median_s(action: object, runs: int) -> float:
    """Median wall-clock seconds of ``action()`` over ``runs`` runs."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        action()  # type: ignore[operator]
        times.append(time.monotonic() - start)
    return statistics.median(times)


def measure(
    ours: S3Storage, theirs: S3Storage, scratch: Path, mib: int, runs: int
) -> tuple[float, float]:
    """Median seconds to copy an object of ``mib`` MiB in, and to download it."""
    theirs.put_bytes("out/slide.tif", os.urandom(mib * 1024**2))
    etag = theirs.stat("out/slide.tif").etag

    def copy() -> None:
        ours.copy_if_match(theirs.bucket, "out/slide.tif", "images/x/original", etag)

    def download() -> None:
        theirs.download_file("out/slide.tif", scratch / "original")

    return median_s(copy, runs), median_s(download, runs)


def main() -> None:
    """Start SeaweedFS, put objects into a scanner bucket, time copy and download."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    with tempfile.TemporaryDirectory() as scratch:
        server = SeaweedServer(Path(scratch) / "seaweedfs")
        try:
            stores = [
                S3Storage(S3Config(bucket=name, endpoint_url=server.endpoint, region="us-east-1"))
                for name in ("plexzoom", "scanner")
            ]
            for store in stores:
                store.ensure_bucket()
            ours, theirs = stores
            print("size     copy (s)   download (s)   copy / download")
            for mib in args.mib:
                copy, download = measure(ours, theirs, Path(scratch), mib, args.runs)
                print(f"{mib:4d} MiB {copy:9.2f} {download:13.2f} {copy / download:14.2f}x")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
