"""Kill and resume (issue 16): `plexzoom upload` is sent SIGKILL once half the parts are stored,
then run again; what it sent twice is counted on the wire by a relay in front of S3."""

import contextlib
import hashlib
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from uploads import BUCKET, MIB, Api, finish_command, start_command, verdict

PART_MIB = 16  # the server's default part size


class CountingRelay:
    """A TCP relay on loopback in front of the S3 server that counts the bytes clients send
    through it. /proc/PID/io's wchar cannot: send(2) on a socket is not counted there."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            for src, dst, counted in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, counted), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        """Copy until the source ends (a killed client's connection resets)."""
        try:
            while data := src.recv(1 << 20):
                if counted:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (dst, src):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()


def stored_parts(s3: Any) -> list[dict[str, Any]]:
    """The parts S3 holds of the one unfinished upload in the bucket (none yet: [])."""
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    if not uploads:
        return []
    key, upload_id = uploads[0]["Key"], uploads[0]["UploadId"]
    return list(s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id).get("Parts", []))


def part_digests(path: Path, part_size: int) -> list[bytes]:
    """The MD5 of each part of ``path`` (S3's ETag of a part, unquoted, is its hex)."""
    digests = []
    with path.open("rb") as file:
        while chunk := file.read(part_size):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return digests


def multipart_etag(digests: list[bytes]) -> str:
    """The ETag S3 gives an object joined from parts with these MD5s."""
    joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f'"{joined}-{len(digests)}"'


def differing_parts(s3: Any, key: str, digests: list[bytes], part_size: int) -> list[int]:
    """The numbers of the parts whose bytes in the object are not the file's (read back)."""
    wrong = []
    for number, digest in enumerate(digests, start=1):
        first = (number - 1) * part_size
        span = f"bytes={first}-{first + part_size - 1}"
        answer = s3.get_object(Bucket=BUCKET, Key=key, Range=span)
        if hashlib.md5(answer["Body"].read(), usedforsecurity=False).digest() != digest:
            wrong.append(number)
    return wrong


def kill_and_resume(
    server: Any, redis_url: str, s3: Any, path: Path, parallel: int, work: Path
) -> dict[str, Any]:
    """SIGKILL the command once half the parts are stored, run it again: what was sent twice
    (first run's bytes to S3 less the parts stored) and what the rerun sent and reused."""
    relay = CountingRelay(server.endpoint)
    # Part URLs are signed for the public endpoint: the relay (SigV4 signs its host:port).
    public = {"PLEXZOOM_S3_PUBLIC_ENDPOINT_URL": relay.endpoint}
    api = Api(server, PART_MIB, redis_url, work, public)
    state, log = work / "uploads-state", work / "uploads-command.log"
    shutil.rmtree(state, ignore_errors=True)
    try:
        first = start_command(api, path, parallel, state, log)
        seen = stored_parts(s3)
        while sum(p["Size"] for p in seen) < path.stat().st_size / 2:
            if first.poll() is not None:
                raise RuntimeError(f"the command ended before half was stored: {log.read_text()}")
            time.sleep(0.05)
            seen = stored_parts(s3)
        first.send_signal(signal.SIGKILL)
        first.wait()
        # What the killed process had written still reaches S3 (a part wholly in the socket
        # buffers is stored; S3 drops a part cut short).
        time.sleep(1.0)
        stored, sent_first = stored_parts(s3), relay.sent
        again, _rss, _cpu = finish_command(start_command(api, path, parallel, state, log), log)
        sent_again = relay.sent - sent_first
    finally:
        api.stop()
        relay.close()
    result = summary(s3, path, parallel, PART_MIB * MIB, stored, (sent_first, sent_again), again)
    return {"stored_at_signal": len(seen), **result}


def summary(
    s3: Any,
    path: Path,
    parallel: int,
    part_size: int,
    stored: list[dict[str, Any]],
    sent: tuple[int, int],
    again: dict[str, Any],
) -> dict[str, Any]:
    """The figures of one kill and resume (``sent``: bytes to S3 by each run), and a check of
    the parts stored at the kill and of the object it made against the file."""
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"images/{again['image_id']}/")
    original = max(objects.get("Contents", []), key=lambda o: o["Size"])
    stored_bytes = sum(p["Size"] for p in stored)
    digests = part_digests(path, part_size)
    sent_first, sent_again = sent
    result = {
        "parallel": parallel,
        "part_bytes": part_size,
        "parts": again["parts"],
        "stored_at_kill": len(stored),
        "stored_bytes_at_kill": stored_bytes,
        "first_run_sent": sent_first,  # through the relay: part bodies and request headers
        "sent_twice": max(0, sent_first - stored_bytes),
        "bound": parallel * part_size,
        "rerun_sent": sent_again,
        "rerun_parts_sent": again["parts_sent"],
        "rerun_parts_reused": again["parts_reused"],
        "rerun_bytes_sent": again["bytes_sent"],
        "both_runs_over_size": sent_first + sent_again - path.stat().st_size,
        "wrong_parts_at_kill": [
            p["PartNumber"]
            for p in stored
            if p["ETag"].strip('"') != digests[p["PartNumber"] - 1].hex()
        ],
        "object_bytes": original["Size"],
        "etag_matches": original["ETag"] == multipart_etag(digests),
    }
    if not result["etag_matches"]:  # which bytes differ: read the object back
        result["wrong_parts"] = differing_parts(s3, original["Key"], digests, part_size)
    print(
        f"    SIGKILL at {len(stored)}/{again['parts']} parts stored: "
        f"{result['sent_twice'] / MIB:.1f} MiB sent twice (bound {result['bound'] / MIB:.0f} MiB)"
        f"; rerun sent {again['parts_sent']} parts, reused {again['parts_reused']}; "
        f"{verdict(result)}",
        flush=True,
    )
    return result
