"""Hosts for tests as Linux network namespaces on one bridge: each host has its own network
stack and address, and reaches the others (and the test, on the bridge's address) only through
the bridge. Needs root and iproute2's `ip`.

Names start with PREFIX and a random tag (namespaces ``{tag}-{host}``, bridge ``{tag}``, veths
``{tag}-{n}``), so runs side by side do not clash; each run records its pid under RUN_DIR, and a
new run removes what runs whose process is gone left behind.
"""

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PREFIX = "pzmh"
RUN_DIR = Path("/run/plexzoom-netns")
KILL_ROUNDS = 20  # a process may fork while its namespace is being emptied: look again


def ip(*args: str, check: bool = True) -> str:
    """Run `ip` with ``args``; its output, or a RuntimeError with what it said."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def namespace_pids(namespace: str) -> list[int]:
    """Processes in ``namespace`` now."""
    return [int(pid) for pid in ip("netns", "pids", namespace, check=False).split()]


def empty_namespace(namespace: str, timeout_s: float = 10) -> None:
    """SIGKILL every process in ``namespace`` until none is left."""
    deadline = time.monotonic() + timeout_s
    for _ in range(KILL_ROUNDS):
        pids = namespace_pids(namespace)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if namespace_pids(namespace):
        raise RuntimeError(f"processes still run in namespace {namespace}")


def _owner_alive(tag: str) -> bool:
    """True while the run that made ``tag`` is alive."""
    try:
        os.kill(int((RUN_DIR / tag).read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _links() -> list[str]:
    """Names of this run's kind of links (bridges and veths) in the test's namespace."""
    names = [line.split(":")[1].strip() for line in ip("-o", "link", "show").splitlines()]
    return [name.split("@")[0] for name in names if name.startswith(PREFIX)]


def remove_leftovers() -> None:
    """Remove namespaces, bridges and veths of earlier runs whose process is gone."""
    names = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    links = _links()
    tags = {n.split("-")[0] for n in names + links if n.startswith(PREFIX)}
    for tag in sorted(t for t in tags if not _owner_alive(t)):
        ours = [name for name in names if name.startswith(f"{tag}-")]
        for name in ours:
            empty_namespace(name)
        for name in ours:
            ip("netns", "del", name, check=False)
        for link in links:
            if link.split("-")[0] == tag:
                ip("link", "del", link, check=False)
        (RUN_DIR / tag).unlink(missing_ok=True)


def _free_octet() -> int:
    """A third octet x such that nothing on this machine uses 10.77.x.0/24 yet."""
    used = ip("-4", "-o", "addr", "show") + ip("-4", "route", "show", "table", "all")
    free = [x for x in range(1, 255) if f"10.77.{x}." not in used]
    if not free:
        raise RuntimeError("every 10.77.x.0/24 is in use")
    return random.choice(free)


class Network:
    """A bridge with one namespace per host on it (10.77.x.2, .3, ...; the test is 10.77.x.1)."""

    def __init__(self, hosts: Sequence[str]) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("network namespaces need root (this test runs as a user)")
        if shutil.which("ip") is None:
            raise RuntimeError("no `ip` command (apt-get install iproute2)")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        remove_leftovers()
        self.tag = PREFIX + secrets.token_hex(2)
        (RUN_DIR / self.tag).write_text(str(os.getpid()))
        subnet = f"10.77.{_free_octet()}"
        self.gateway = f"{subnet}.1"
        self.addresses = {host: f"{subnet}.{n + 2}" for n, host in enumerate(hosts)}
        self.namespaces = {host: f"{self.tag}-{host}" for host in hosts}
        try:
            self._build()
        except BaseException:
            self.remove()
            raise

    def _build(self) -> None:
        """The bridge (with the test's address), then each host's namespace and veth pair."""
        ip("link", "add", self.tag, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.tag)
        ip("link", "set", self.tag, "up")
        for n, (host, namespace) in enumerate(self.namespaces.items()):
            outer = f"{self.tag}-{n}"
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", outer, "master", self.tag, "up")
            ip("-n", namespace, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    def start(
        self, host: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` in a session of its own; stdout and stderr to a file."""
        with log_path.open("ab") as log:
            return subprocess.Popen(
                self.command(host, argv),
                env=dict(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL every process of ``host`` (as if the machine lost power); their pids."""
        pids = namespace_pids(self.namespaces[host])
        empty_namespace(self.namespaces[host])
        return pids

    def remove(self) -> None:
        """Kill every process of every host, then delete the namespaces, the veths, the bridge
        and the run's record.

        Every host is emptied before any namespace goes, while the bridge still carries the
        connections' last packets. A namespace outlives `ip netns del` while a socket of it
        still waits for its peer (a FIN to a host already gone is retried for minutes), and
        keeps its veth pair then: so the veths are deleted by name too.
        """
        errors = []
        for namespace in self.namespaces.values():
            try:
                empty_namespace(namespace)
            except RuntimeError as exc:
                errors.append(str(exc))
        for n, namespace in enumerate(self.namespaces.values()):
            ip("netns", "del", namespace, check=False)
            ip("link", "del", f"{self.tag}-{n}", check=False)
        ip("link", "del", self.tag, check=False)
        (RUN_DIR / self.tag).unlink(missing_ok=True)
        if errors:
            raise RuntimeError("; ".join(errors))
