"""What every command of the ``plexzoom`` command shares: the server, the output, the client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import click

from plexzoom.client.client import Client
from plexzoom.client.config import Target
from plexzoom.client.console import Output, WaitBars
from plexzoom.client.errors import PlexzoomError, fatal
from plexzoom.client.exits import Exit, exit_for
from plexzoom.client.models import Image


class Session:
    """What every command gets: the server, the output style and a client made on first use."""

    def __init__(self, target: Target, output: Output) -> None:
        self.target, self.output = target, output
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The client of the chosen server."""
        if self._client is None:
            self._client = Client(self.target.url, self.target.key)
        return self._client

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    def failed(self, subject: str, exc: PlexzoomError, body: Mapping[str, object]) -> Exit:
        """Report one item's failure (stderr, and a JSON line with --json); its exit code."""
        code = exit_for(exc)
        hint = " (the key comes from --key, $PLEXZOOM_KEY or the config file)" if code == 4 else ""
        self.output.problem(subject, exc.detail + hint)
        if self.output.as_json:
            self.output.record({**body, "error": exc.detail, "exit": int(code)}, "")
        return code


pass_session = click.make_pass_decorator(Session)


def for_each(session: Session, ids: Iterable[str], action: Callable[[str], None]) -> Exit:
    """Run ``action`` on each id; a failure is reported and the rest still run (unless the
    server is unreachable or refuses the key); the first failure's exit code."""
    code = Exit.OK
    for image_id in ids:
        try:
            action(image_id)
        except PlexzoomError as exc:
            failure = session.failed(image_id, exc, {"id": image_id})
            code = code or failure
            if fatal(exc):
                break
    return code


def wait_for(session: Session, image_ids: list[str], timeout: float | None) -> dict[str, Image]:
    """Every image's final status, with a bar each while they convert."""
    bars = WaitBars(session.output, image_ids)
    with bars.shown():
        return session.client.wait(image_ids, timeout, on_change=bars.update)
