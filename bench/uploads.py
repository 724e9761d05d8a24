"""Resumable uploads (issue 16): `plexzoom upload` of a 1 GiB image against boto3's
`upload_file` at its fastest measured setting, on moto's S3 server and on SeaweedFS; the
command's peak memory; and what a SIGKILL halfway through costs when the command is run again."""

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psutil
import tifffile
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from stack import (
    REPO,
    MotoServer,
    SeaweedS3,
    cpu_seconds,
    free_port,
    settle,
    stop_process,
    wait_http,
)

MIB = 2**20
SIDE = 32768  # a 32768² 8-bit grayscale TIFF, uncompressed: 1 GiB of pixels and a small header
BUCKET = "bench-uploads"
API_KEY = "bench-uploads-key-0123456789"
# boto3's settings measured (chunk MiB, max_concurrency). Explored first on both servers
# (2026-12-05, shared 2-core machine): 8/16/32/64 MiB x 4/10/16 threads and use_threads=False
# once each, then the settings kept here three times each. 16 threads, no threads and 16 MiB x 4
# were never the fastest; 32 MiB x 4 was once (SeaweedFS) and the slowest on both servers the
# next time. The fastest medians: 16 MiB x 10 (moto 3 of 4 times, SeaweedFS once), boto3's
# default 8 MiB x 10 (moto once), 64 MiB x 4 (SeaweedFS once).
BOTO3_OPTIONS = ((8, 10), (16, 10), (64, 4))
# The command's --parallel (4 is its default). 2 was tried: on SeaweedFS the slowest, on moto
# (where the completion dominates) within the noise of 4.
PARALLEL = (4, 8)
# The server's PLEXZOOM_UPLOAD_PART_BYTES (16 MiB is its default); 32 MiB, tried once, was the
# slowest setting on both servers.
PART_MIB = (16, 64)
DEFAULT = (4, 16)  # (--parallel, part MiB) the product ships with
GOAL_RATIO = 0.9  # the command's throughput against boto3's best
GOAL_RSS = 150 * MIB


def make_image(folder: Path) -> Path:
    """Write the 1 GiB TIFF of random pixels (a valid image: completion queues a conversion)."""
    path = folder / "upload-1gib.tif"
    pixels = tifffile.memmap(path, shape=(SIDE, SIDE), dtype=np.uint8, photometric="minisblack")
    rng, rows = np.random.default_rng(16), 512
    for y in range(0, SIDE, rows):
        pixels[y : y + rows] = np.frombuffer(rng.bytes(rows * SIDE), np.uint8).reshape(rows, SIDE)
    pixels.flush()
    del pixels
    return path


def s3_client(server: MotoServer | SeaweedS3, pool: int = 10) -> Any:
    """A boto3 client of the server with ``pool`` connections (at least boto3's threads)."""
    env = server.env(BUCKET)
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(10, pool)),
    )


def empty_bucket(s3: Any) -> None:
    """Delete every object and abort every unfinished upload (moto holds them in memory)."""
    for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def boto3_upload(
    server: MotoServer | SeaweedS3, path: Path, chunk: int, threads: int
) -> dict[str, float]:
    """Seconds of one `upload_file` (a fresh client, as a script would start with), of its
    CompleteMultipartUpload, and the CPU seconds it took (this process's threads)."""
    s3 = s3_client(server, threads)
    marks: dict[str, float] = {}
    for when in ("before", "after"):
        s3.meta.events.register(
            f"{when}-call.s3.CompleteMultipartUpload",
            lambda when=when, **_: marks.__setitem__(when, time.monotonic()),
        )
    config = TransferConfig(
        multipart_threshold=8 * MIB,
        multipart_chunksize=chunk * MIB,
        max_concurrency=threads,
        use_threads=threads > 1,
    )
    started, cpu = time.monotonic(), time.process_time()
    s3.upload_file(str(path), BUCKET, "boto3/" + path.name, Config=config)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"seconds": seconds, "completion_s": marks["after"] - marks["before"], "cpu_s": cpu}


class Api:
    """`python -m plexzoom.api` alone against a bucket, with Redis but no worker (a completed
    upload's conversion stays queued: its CPU would disturb the next measurement)."""

    def __init__(
        self,
        server: MotoServer | SeaweedS3,
        part_mib: int,
        redis_url: str,
        work: Path,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PLEXZOOM_")}
        env = {
            **inherited,
            **server.env(BUCKET),
            "PLEXZOOM_PORT": self.url.rsplit(":", 1)[1],
            "PLEXZOOM_DATA_DIR": str(work / f"api-{part_mib}"),
            "PLEXZOOM_REDIS_URL": redis_url,
            "PLEXZOOM_API_KEYS": API_KEY,
            "PLEXZOOM_UPLOAD_PART_BYTES": str(part_mib * MIB),
            **(extra or {}),
        }
        self.log_path = work / f"uploads-{type(server).__name__}-api-{part_mib}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plexzoom.api"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_http(f"{self.url}/healthz", self.proc)
        except BaseException:
            self.stop()
            raise

    def completion_s(self, image_id: str) -> float | None:
        """Seconds the api took to answer the completion of ``image_id`` (its access log)."""
        pattern = rf"POST '/v1/uploads/{image_id}/complete' 202 key=\S+ image=\S+ ([0-9.]+)ms"
        for _ in range(20):  # the line is written just after the answer
            found = re.findall(pattern, self.log_path.read_text(errors="replace"))
            if found:
                return float(found[-1]) / 1000
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        """Stop the api."""
        stop_process(self.proc)


def command() -> list[str]:
    """The `plexzoom` command installed beside this Python (the venv's)."""
    beside = shutil.which("plexzoom", path=str(Path(sys.executable).parent))
    return [beside or "plexzoom", "--json", "upload"]


def start_command(api: Api, path: Path, parallel: int, state: Path, log: Path) -> Any:
    """Start `plexzoom --json upload PATH --parallel N`; its JSON line goes to ``log``."""
    env = {
        **os.environ,
        "PLEXZOOM_URL": api.url,
        "PLEXZOOM_KEY": API_KEY,
        "XDG_STATE_HOME": str(state),
    }
    env.pop("XDG_CONFIG_HOME", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command(), str(path), "--parallel", str(parallel)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finish_command(proc: Any, log: Path) -> tuple[dict[str, Any], int, float]:
    """Wait for the command: its JSON result, peak RSS in bytes and CPU seconds.

    The peak is the kernel's high-water mark of the command's own memory (VmHWM), read every
    50 ms until it exits. Not ru_maxrss: subprocess starts children with vfork, and the exec
    counts the parent's RSS at that moment (this process, which has held GiB buffers) into it.
    """
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, high_water(proc.pid))
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"plexzoom upload exited with {proc.returncode}: {text[-1500:]}")
    return json.loads(lines[-1]), peak, usage.ru_utime + usage.ru_stime


def high_water(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def command_upload(api: Api, path: Path, parallel: int, work: Path) -> dict[str, Any]:
    """One upload by the command from a fresh state folder: wall seconds (start to exit, as a
    person waits for it), peak RSS and its JSON result."""
    state = work / "uploads-state"
    shutil.rmtree(state, ignore_errors=True)
    started = time.monotonic()
    proc = start_command(api, path, parallel, state, work / "uploads-command.log")
    result, rss, cpu = finish_command(proc, work / "uploads-command.log")
    seconds = time.monotonic() - started
    if result["status"] != "queued" or result["parts_sent"] != result["parts"]:
        raise RuntimeError(f"unexpected upload result: {result}")
    completion = api.completion_s(result["image_id"])
    return {"seconds": seconds, "completion_s": completion, "cpu_s": cpu, "rss": rss}


def variants(
    apis: dict[int, Api], server: MotoServer | SeaweedS3, path: Path, work: Path
) -> list[tuple[str, str, Any]]:
    """(kind, label, run) of every setting measured, boto3's and the command's alternating."""
    boto = [
        (
            "boto3",
            f"{chunk} MiB x {threads}",
            lambda c=chunk, t=threads: boto3_upload(server, path, c, t),
        )
        for chunk, threads in BOTO3_OPTIONS
    ]
    settings = [(p, DEFAULT[1]) for p in PARALLEL] + [
        (DEFAULT[0], m) for m in PART_MIB if m != DEFAULT[1]
    ]
    ours = [
        ("command", label(p, m), lambda p=p, m=m: command_upload(apis[m], path, p, work))
        for p, m in settings
    ]
    mixed = [v for pair in zip(boto, ours, strict=False) for v in pair]
    return mixed + boto[len(ours) :] + ours[len(boto) :]


def label(parallel: int, part_mib: int) -> str:
    """A command setting's name in the table."""
    return f"--parallel {parallel}, {part_mib} MiB parts"


def measure_server(
    server: MotoServer | SeaweedS3, redis_url: str, path: Path, runs: int, work: Path
) -> dict[str, Any]:
    """Every setting ``runs`` times (rounds, settings alternating), then the kill and resume."""
    s3 = s3_client(server)
    apis: dict[int, Api] = {}
    try:
        for part_mib in PART_MIB:  # the first api makes the bucket
            apis[part_mib] = Api(server, part_mib, redis_url, work)
        rows: dict[str, dict[str, Any]] = {}
        for rep in range(runs):
            for kind, name, measure in variants(apis, server, path, work):
                settle(max_s=3)
                servers = server_processes(server, apis.values())
                before = cpu_seconds(servers)
                got = measure()
                got["server_cpu_s"] = cpu_seconds(servers) - before
                empty_bucket(s3)
                row = rows.setdefault(name, {"kind": kind})
                for field, value in got.items():
                    row.setdefault(field, []).append(value)
                print(f"    run {rep + 1}: {kind} {name}: {described(got)}", flush=True)
        from upload_resume import kill_and_resume  # it builds on this module

        resume = kill_and_resume(server, redis_url, s3, path, DEFAULT[0], work)
        empty_bucket(s3)
    finally:
        for api in apis.values():
            api.stop()
    return summarise(rows, path.stat().st_size) | {"resume": resume}


def server_processes(server: MotoServer | SeaweedS3, apis: Iterable[Api]) -> list[psutil.Process]:
    """The S3 server's and the apis' processes (with their children)."""
    pids = [server.proc.pid if isinstance(server, MotoServer) else server.server.proc.pid]
    pids += [api.proc.pid for api in apis]
    roots = [psutil.Process(pid) for pid in pids]
    return [p for root in roots for p in (root, *root.children(recursive=True))]


def described(got: dict[str, Any]) -> str:
    """One measurement in words."""
    text = f"{got['seconds']:.2f} s"
    if "rss" in got:
        text += f", peak RSS {got['rss'] / MIB:.0f} MiB"
    if got.get("completion_s") is not None:
        text += f", of which completion {got['completion_s']:.2f} s"
    return text + f"; CPU s client {got['cpu_s']:.1f}, servers {got['server_cpu_s']:.1f}"


def summarise(rows: dict[str, dict[str, Any]], size: int) -> dict[str, Any]:
    """Medians, throughputs, boto3's best setting and the command's ratios to it."""
    for row in rows.values():
        row["median_s"] = statistics.median(row["seconds"])
        row["mib_per_s"] = size / MIB / row["median_s"]
        known = [s for s in row["completion_s"] if s is not None]
        row["median_completion_s"] = statistics.median(known) if known else None
        row["median_cpu_s"] = statistics.median(row["cpu_s"])
        row["median_server_cpu_s"] = statistics.median(row["server_cpu_s"])
    boto = {k: r for k, r in rows.items() if r["kind"] == "boto3"}
    ours = {k: r for k, r in rows.items() if r["kind"] == "command"}
    best_boto3 = min(boto, key=lambda k: boto[k]["median_s"])
    best_command = min(ours, key=lambda k: ours[k]["median_s"])
    for row in rows.values():
        row["ratio"] = row["mib_per_s"] / boto[best_boto3]["mib_per_s"]
    default = label(*DEFAULT)
    return {
        "rows": rows,
        "best_boto3": best_boto3,
        "default": default,
        "ratio": ours[default]["ratio"],
        "best_command": best_command,
        "best_ratio": ours[best_command]["ratio"],
        "peak_rss": max(max(r["rss"]) for r in ours.values()),
    }


def start_up_seconds(runs: int = 3) -> float:
    """Median seconds of `plexzoom --help`: the interpreter and imports every upload pays."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([command()[0], "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def start_server(name: str, work: Path) -> MotoServer | SeaweedS3:
    """moto's server (its ranged GETs read only the range, as S3's do: completion reads the
    file's head, which stock moto answers by copying the whole GiB), or SeaweedFS.

    moto completes an upload created without a checksum algorithm (the api's: presigned part
    PUTs carry no checksum header) by a full-object checksum over one more copy of the file
    (moto.s3.models.MultipartChecksumBuilder), which boto3's CRC32 uploads skip: here 4.0-6.3 s
    a GiB against 2.4-3.0 s for the same CompleteMultipartUpload created with CRC32.
    """
    if name == "moto":
        return MotoServer(work / "uploads-moto.log", ranged_reads_patch=True)
    return SeaweedS3(work / "uploads-seaweedfs.log")


def run(work: Path, runs: int) -> dict[str, Any]:
    """Both servers; the image is written once into ``work`` and removed at the end."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.servers import RedisServer

    print("\n== uploads: plexzoom upload against boto3 upload_file, 1 GiB ==", flush=True)
    path = make_image(work)
    size = path.stat().st_size
    redis = RedisServer()  # private: the queued conversions die with it
    servers: dict[str, dict[str, Any]] = {}
    try:
        for name in ("moto", "seaweedfs"):
            print(f"  {name}", flush=True)
            server = start_server(name, work)
            try:
                servers[name] = measure_server(server, redis.url, path, runs, work)
            finally:
                server.stop()
    finally:
        redis.kill()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return {
        "size": size,
        "command_start_s": start_up_seconds(),
        "runs": runs,
        "goal_ratio": GOAL_RATIO,
        "goal_rss": GOAL_RSS,
        "servers": servers,
    }


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    lines = [
        f"Uploads of a {result['size'] / 2**30:.2f} GiB TIFF, median of {result['runs']}: boto3 "
        "upload_file (chunk x threads) against `plexzoom upload` (start to exit); ratio = "
        f"throughput / boto3's best (goal >= {result['goal_ratio']}x), peak RSS goal < "
        f"{result['goal_rss'] / MIB:.0f} MiB; completion = CompleteMultipartUpload (boto3) or "
        f"the api's POST .../complete; the command's start-up (--help) "
        f"{result['command_start_s']:.2f} s",
        f"  {'server':9s} {'client':7s} {'setting':28s} {'time':>8s} {'rate':>10s} "
        f"{'ratio':>6s} {'completion':>10s} {'CPU client':>10s} {'servers':>7s} {'peak RSS':>8s}",
    ]
    for name, server in result["servers"].items():
        for key, row in server["rows"].items():
            done = row["median_completion_s"]
            rss = f"{max(row['rss']) / MIB:4.0f} MiB" if row["kind"] == "command" else ""
            rss = "(best)" if key == server["best_boto3"] else rss
            lines.append(
                f"  {name:9s} {row['kind']:7s} {key:28s} {row['median_s']:6.2f} s "
                f"{row['mib_per_s']:5.0f} MiB/s {row['ratio']:5.2f}x "
                f"{'' if done is None else f'{done:8.2f} s'} {row['median_cpu_s']:8.1f} s "
                f"{row['median_server_cpu_s']:5.1f} s {rss:>8s}"
            )
    for name, server in result["servers"].items():
        ok = "OK" if server["ratio"] >= result["goal_ratio"] else "MISSED"
        rss_ok = "OK" if server["peak_rss"] < result["goal_rss"] else "MISSED"
        kill = server["resume"]
        twice_ok = "OK" if kill["sent_twice"] <= kill["bound"] else "MISSED"
        lines += [
            f"  {name}: default ({server['default']}) {server['ratio']:.2f}x of boto3's best "
            f"({server['best_boto3']}) {ok}; fastest setting {server['best_command']} "
            f"{server['best_ratio']:.2f}x; peak RSS {server['peak_rss'] / MIB:.0f} MiB {rss_ok}",
            f"  {name}: SIGKILL once {kill['stored_at_signal']}/{kill['parts']} parts were stored "
            f"({kill['stored_at_kill']} once the parts in flight settled): "
            f"{kill['sent_twice'] / MIB:.1f} MiB sent twice (bound {kill['parallel']} x "
            f"{kill['part_bytes'] / MIB:.0f} MiB) {twice_ok}; the rerun sent "
            f"{kill['rerun_parts_sent']} parts and reused {kill['rerun_parts_reused']}; "
            f"{verdict(kill)}",
        ]
    return lines


def verdict(result: dict[str, Any]) -> str:
    """The object's check in words."""
    text = "object identical (multipart ETag)"
    if not result["etag_matches"]:
        text = f"object DIFFERENT in parts {result['wrong_parts']}"
    if result["wrong_parts_at_kill"]:
        text += f"; parts stored at the kill with other bytes: {result['wrong_parts_at_kill']}"
    return text
