"""The plexzoom command against the whole stack, on a local folder and on S3 (SeaweedFS)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.conftest import KEY, write_tiff
from tests.servers import REPO, Stack, free_port

pytestmark = pytest.mark.slow
HELD_PART = 2


def cli_env(tmp_path: Path, url: str, key: str | None = KEY) -> dict[str, str]:
    """The command's environment: its own state and config folders, the server and key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLEXZOOM_", "XDG_"))}
    env |= {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PLEXZOOM_URL": url,
    }
    if key is not None:
        env["PLEXZOOM_KEY"] = key
    return env


def plexzoom(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command as a user does; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "plexzoom.client", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def lines(stdout: str) -> list[dict[str, Any]]:
    """--json output: one object a line."""
    return [json.loads(line) for line in stdout.splitlines()]


def image_of(stack: Stack, image_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{stack.url}/v1/images/{image_id}", headers={"authorization": f"Bearer {KEY}"}
    )
    return dict(answer.json())


def states(tmp_path: Path) -> list[Path]:
    """The unfinished uploads the command remembers."""
    return sorted((tmp_path / "state" / "plexzoom" / "uploads").glob("*.json"))


def test_upload_wait_json_ends_ready(stack: Stack, three_parts: Path, tmp_path: Path) -> None:
    env = cli_env(tmp_path, stack.url)
    done = plexzoom(env, "--json", "upload", "--wait", str(three_parts))
    assert done.returncode == 0, done.stderr
    (line,) = lines(done.stdout)
    size = three_parts.stat().st_size
    assert {k: line[k] for k in ("path", "status", "size", "parts", "parts_sent")} == {
        "path": str(three_parts), "status": "ready", "size": size, "parts": 3, "parts_sent": 3,
    }  # fmt: skip
    assert (line["parts_reused"], line["bytes_sent"]) == (0, size)
    image = image_of(stack, line["image_id"])
    assert (image["status"], image["width"], image["height"]) == ("ready", 1700, 2200)
    assert image["size"] == size and line["viewer"] == image["links"]["viewer"]
    assert states(tmp_path) == []
    assert "Traceback" not in done.stderr


def test_a_folder_is_uploaded_with_everything_in_it(stack: Stack, tmp_path: Path) -> None:
    """Files of the folder and its subfolders, hidden ones left out; people get a line each."""
    folder = tmp_path / "run 7"
    (folder / "sub").mkdir(parents=True)
    write_tiff(folder / "a.tif", 300, 200, seed=1)
    write_tiff(folder / "sub" / "b.tif", 320, 240, seed=2)
    (folder / ".DS_Store").write_bytes(b"\0" * 64)
    done = plexzoom(cli_env(tmp_path, stack.url), "upload", "--wait", str(folder))
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert [line.split("  ")[0] for line in shown] == [
        str(folder / "a.tif"),
        str(folder / "sub" / "b.tif"),
    ]
    assert all("  ready  (1 of 1 parts sent)" in line for line in shown)
    widths = {image_of(stack, line.split("  ")[1])["width"] for line in shown}
    assert widths == {300, 320}


BLOCKING = """
import sys, threading
from pathlib import Path
import httpx

number, marker = int(sys.argv[1]), Path(sys.argv[2])
send = httpx.HTTPTransport.handle_request

def held(self, request):
    query = dict(request.url.params)
    wanted = request.url.path.endswith(f"/parts/{number}") or query.get("partNumber") == str(number)
    if request.method == "PUT" and wanted:
        marker.touch()
        threading.Event().wait()  # until the test kills this process
    return send(self, request)

httpx.HTTPTransport.handle_request = held
from plexzoom.client.cli import main
main(sys.argv[3:], prog_name="plexzoom")
"""


def test_a_killed_upload_resumes_where_it_stopped(
    stack: Stack, three_parts: Path, tmp_path: Path
) -> None:
    """Part 2's PUT is held until the process is killed; parts 1 and 3 are stored by then.
    The same command again sends part 2 only and completes with the stored ETags."""
    env, marker = cli_env(tmp_path, stack.url), tmp_path / "part-held"
    args = ["--json", "upload", "--parallel", "3", str(three_parts)]
    first = subprocess.Popen(
        [sys.executable, "-c", BLOCKING, str(HELD_PART), str(marker), *args],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        upload_id = wait_for_parts(stack, tmp_path, marker, first, {1, 3})
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert len(states(tmp_path)) == 1
    done = plexzoom(env, *args[:2], "--wait", *args[2:])
    assert done.returncode == 0, done.stderr
    (line,) = lines(done.stdout)
    assert line["image_id"] == upload_id
    assert (line["parts"], line["parts_sent"], line["parts_reused"]) == (3, 1, 2)
    assert line["bytes_sent"] == 5 * 1024 * 1024 and line["status"] == "ready"
    assert image_of(stack, upload_id)["width"] == 1700
    assert states(tmp_path) == []


def wait_for_parts(
    stack: Stack, tmp_path: Path, marker: Path, proc: subprocess.Popen[bytes], parts: set[int]
) -> str:
    """The upload's id once the held part's PUT began and ``parts`` are stored."""
    headers = {"authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        found = states(tmp_path)
        if marker.exists() and found:
            upload_id = str(json.loads(found[0].read_text())["upload_id"])
            got = httpx.get(f"{stack.url}/v1/uploads/{upload_id}", headers=headers).json()
            if {p["number"] for p in got["stored"]} == parts:
                return upload_id
        time.sleep(0.05)
    raise AssertionError(f"parts {parts} were never stored while part {HELD_PART} was held")


def test_images_are_listed_followed_reconverted_and_deleted(stack: Stack, tmp_path: Path) -> None:
    env = cli_env(tmp_path, stack.url)
    path = write_tiff(tmp_path / "small.tif", 256, 128, seed=3)
    (sent,) = lines(plexzoom(env, "--json", "upload", str(path)).stdout)
    image_id = sent["image_id"]
    waited = plexzoom(env, "--json", "wait", image_id, "--timeout", "120")
    assert waited.returncode == 0, waited.stderr
    assert lines(waited.stdout)[0]["status"] == "ready"
    assert lines(plexzoom(env, "--json", "status", image_id).stdout)[0]["width"] == 256
    assert image_id in {i["id"] for i in lines(plexzoom(env, "--json", "ls").stdout)}
    again = plexzoom(env, "--json", "reconvert", image_id)
    assert again.returncode == 0 and lines(again.stdout)[0]["status"] in ("queued", "processing")
    assert plexzoom(env, "wait", image_id).stdout.split()[:2] == [image_id, "ready"]
    opened = tmp_path / "opened"
    record = f"import sys, pathlib; pathlib.Path({str(opened)!r}).write_text(sys.argv[1])"
    shown = plexzoom(env | {"BROWSER": f'{sys.executable} -c "{record}" %s'}, "open", image_id)
    assert shown.returncode == 0 and opened.read_text() == shown.stdout.strip()
    assert opened.read_text().endswith(f"/view.html?id={image_id}")
    assert plexzoom(env, "rm", image_id).returncode == 0
    gone = plexzoom(env, "status", image_id)
    assert gone.returncode == 5 and gone.stderr.startswith(f"plexzoom: {image_id}: ")
    assert "Traceback" not in gone.stderr


def test_a_file_that_is_not_an_image_is_refused_with_the_servers_reason(
    stack: Stack, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n" * 1000)
    done = plexzoom(cli_env(tmp_path, stack.url), "--json", "upload", str(text))
    assert done.returncode == 1
    (line,) = lines(done.stdout)
    assert (line["path"], line["status"], line["exit"]) == (str(text), "error", 1)
    assert "TIFF" in line["error"] and line["error"] in done.stderr
    assert "Traceback" not in done.stderr and states(tmp_path) == []


def test_a_wrong_key_exits_4_with_the_servers_reason(stack: Stack, tmp_path: Path) -> None:
    for key in ("wrong-key", None):
        done = plexzoom(cli_env(tmp_path, stack.url, key), "ls")
        assert done.returncode == 4, done.stderr
        assert "API key" in done.stderr and "$PLEXZOOM_KEY" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_config_file_names_server_and_key(stack: Stack, tmp_path: Path) -> None:
    env = cli_env(tmp_path, stack.url, key=None)
    del env["PLEXZOOM_URL"]
    config = tmp_path / "config" / "plexzoom" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'url = "{stack.url}"\nkey = "{KEY}"\n')
    assert plexzoom(env, "ls").returncode == 0
    config.write_text(f'url = "{stack.url}"\nkey = "not-it"\n')
    assert plexzoom(env, "ls").returncode == 4


def test_a_server_that_is_down_exits_3(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"http://127.0.0.1:{free_port()}")
    path = write_tiff(tmp_path / "small.tif", 64, 64)
    for args in (["ls"], ["upload", str(path)], ["status", "x" * 26], ["wait", "x" * 26]):
        done = plexzoom(env, *args)
        assert done.returncode == 3, (args, done.stderr)
        assert "is unreachable" in done.stderr and "Traceback" not in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = cli_env(tmp_path, "ftp://nowhere")
    assert plexzoom(env, "ls").returncode == 2
    assert (
        plexzoom(cli_env(tmp_path, "http://127.0.0.1:1"), "upload", "/no/such/file").returncode == 2
    )


STREAM_MARKED = """
import contextlib, sys
from pathlib import Path
from plexzoom.client.client import Client

marker, opened = Path(sys.argv[1]), Client.event_stream

@contextlib.contextmanager
def marked(self, *args, **kwargs):
    with opened(self, *args, **kwargs) as response:
        marker.touch()  # the server answered: it follows the image's events from now on
        yield response

Client.event_stream = marked
from plexzoom.client.cli import main
main(sys.argv[2:], prog_name="plexzoom")
"""


def test_wait_follows_a_conversion_in_flight_to_ready(stack: Stack, tmp_path: Path) -> None:
    """The conversion is held half way until the waiting command has its event stream open,
    so only the stream can tell it that the image became ready."""
    env, marker = cli_env(tmp_path, stack.url), tmp_path / "stream-open"
    path = write_tiff(tmp_path / "held.tif", 300, 300, seed=4)
    stack.hold.arm(0.5)
    try:
        (sent,) = lines(plexzoom(env, "--json", "upload", str(path)).stdout)
        stack.hold.wait_held(0.5)
        waiting = subprocess.Popen(
            [sys.executable, "-c", STREAM_MARKED, str(marker), "--json", "wait", sent["image_id"]],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not marker.exists() and waiting.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists() and waiting.poll() is None
        stack.hold.release(0.5)
        out, err = waiting.communicate(timeout=120)
    finally:
        stack.hold.disarm()
    assert waiting.returncode == 0, err
    assert [line["status"] for line in lines(out)] == ["ready"]
