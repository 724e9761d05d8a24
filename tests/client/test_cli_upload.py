"""``plexzoom upload`` of several files at once against the in-memory server: files in flight
together, a line per file as it ends, exit codes, and Ctrl-C (SIGINT to a real process)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from plexzoom.client import Client, session
from plexzoom.client.cli import main
from tests.client.fake_server import FakeServer, PartGate

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def plexzoom(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> Result:
    """The command in this process, its client talking to ``server``."""

    def client(url: str, key: str | None) -> Client:
        return Client(url, key, transport=server.transport(), state_dir=tmp_path / "st")

    monkeypatch.setattr(session, "Client", client)
    return CliRunner().invoke(main, ["--url", "http://api.test", *args], prog_name="plexzoom")


def lines(stdout: str) -> dict[str, dict[str, Any]]:
    """--json output by path."""
    return {line["path"]: line for line in map(json.loads, stdout.splitlines())}


def test_two_files_go_at_once_by_default(
    tmp_path: Path, slides: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file's first PUT is held until the other's has come (``--files 1`` fails)."""
    server = FakeServer(gate=PartGate(uploads=2))
    done = plexzoom(server, tmp_path, monkeypatch, "--json", "upload", "--parallel", "1",
                    *map(str, slides))  # fmt: skip
    assert done.exit_code == 0, (done.output, done.exception)
    shown = lines(done.stdout)
    assert sorted(shown) == [str(p) for p in slides]
    assert {(line["status"], line["parts_sent"]) for line in shown.values()} == {("queued", 3)}


def test_a_refused_file_has_its_line_and_exit_1_while_the_other_is_uploaded(
    tmp_path: Path, slides: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeServer(refused={"a.tif"})
    done = plexzoom(server, tmp_path, monkeypatch, "--json", "upload", "--files", "2",
                    *map(str, slides))  # fmt: skip
    assert done.exit_code == 1
    shown = lines(done.stdout)
    assert (shown[str(slides[0])]["status"], shown[str(slides[0])]["exit"]) == ("error", 1)
    assert shown[str(slides[1])]["status"] == "queued"
    assert f"plexzoom: {slides[0]}: This file is not an image" in done.stderr


def test_a_wrong_key_exits_4_and_starts_no_other_file(
    tmp_path: Path, slides: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeServer(key="right")
    done = plexzoom(server, tmp_path, monkeypatch, "--key", "wrong", "--json", "upload",
                    "--files", "1", *map(str, slides))  # fmt: skip
    assert done.exit_code == 4
    assert [line["exit"] for line in lines(done.stdout).values()] == [4]
    assert done.stderr.count("API key") == 1


def test_files_in_flight_is_1_to_16(
    tmp_path: Path, slides: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for files in ("0", "17"):
        done = plexzoom(FakeServer(), tmp_path, monkeypatch, "upload", "--files", files,
                        str(slides[0]))  # fmt: skip
        assert done.exit_code == 2 and "1<=x<=16" in done.stderr


INTERRUPTED = """
import json, os, signal, sys
from pathlib import Path
from plexzoom.client import Client, session, upload
from plexzoom.client.cli import main
from tests.client.fake_server import GUARD_S, FakeServer, PartGate

# A background shell starts its children with SIGINT ignored, and Python then leaves it so:
# give the process the handler a terminal's would have.
signal.signal(signal.SIGINT, signal.default_int_handler)
held_fd, summary, state = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
uploaders, made = [], upload.Uploader.__init__

def noted(self, *args, **kwargs):
    made(self, *args, **kwargs)
    uploaders.append(self)

def held():
    os.write(held_fd, b"held\\n")  # both files' part 2 is under way: the test sends SIGINT
    assert uploaders[0].stop.wait(GUARD_S), "SIGINT did not set the stop"

upload.Uploader.__init__ = noted
server = FakeServer(gate=PartGate(uploads=2, number=2, then=held))
session.Client = lambda url, key: Client(url, key, transport=server.transport(), state_dir=state)
try:
    main(sys.argv[4:], prog_name="plexzoom")
finally:
    summary.write_text(json.dumps(server.puts))
"""


def test_ctrl_c_stops_every_file_exits_130_and_keeps_them_to_resume(
    tmp_path: Path, slides: list[Path]
) -> None:
    """SIGINT while both files' part 2 PUT is under way, one part at a time: those PUTs are
    dropped once the stop is set, no part 3 starts, and both uploads are remembered."""
    summary, state = tmp_path / "puts.json", tmp_path / "st"
    read_end, write_end = os.pipe()
    args = [str(write_end), str(summary), str(state), "--url", "http://api.test", "upload",
            "--parallel", "1", *map(str, slides)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, *args], cwd=REPO, pass_fds=(write_end,),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(write_end)
    try:
        held = os.read(read_end, 16)  # blocks until the gate is full, or the process ended
        assert held == b"held\n", proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(read_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == (
        "plexzoom: interrupted with 2 file(s) not uploaded; run the same command again to resume."
    )
    assert out == "" and sorted(json.loads(summary.read_text())) == [1, 1, 2, 2]
    assert len(list(state.glob("*.json"))) == 2
