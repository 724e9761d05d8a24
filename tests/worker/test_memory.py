"""The worker's malloc arena cap, checked in a child process through glibc's own report."""

import subprocess
import sys

_CHILD = """
import ctypes, sys, threading
from plexzoom.worker.memory import limit_malloc_arenas
if sys.argv[1] == "cap":
    assert limit_malloc_arenas(1)
barrier = threading.Barrier(4)
def work():
    barrier.wait()
    for _ in range(200):
        bytearray(1 << 20)  # served by malloc, from the thread's arena
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_the_cap_keeps_threads_in_one_arena() -> None:
    assert arenas("cap") == 1
    assert arenas("free") > 1  # the control: without the cap, busy threads get arenas of their own
