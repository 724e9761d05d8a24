"""What the command shows: rich progress bars on stderr, result lines on stdout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from plexzoom.client.models import Image, UploadProgress


class Output:
    """Result lines: aligned text for people, or one JSON object per line (--json)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.stderr = Console(stderr=True)

    def record(self, body: dict[str, Any], text: str) -> None:
        """One result: ``body`` as JSON, or ``text``."""
        click.echo(json.dumps(body, separators=(",", ":")) if self.as_json else text)

    def image(self, image: Image) -> None:
        """One image's status."""
        percent = f"{image.progress * 100:3.0f}%" if image.status == "processing" else ""
        error = f"  {image.error}" if image.error else ""
        line = f"{image.id}  {image.status:<10} {percent:>4}  {image.filename or ''}{error}"
        self.record(image.raw, line.rstrip())

    def problem(self, subject: str, detail: str) -> None:
        """A failure a person can act on (stderr; never a traceback)."""
        click.echo(f"plexzoom: {subject}{': ' if subject else ''}{detail}", err=True)

    @property
    def bars(self) -> bool:
        """Progress bars only for a person at a terminal."""
        return not self.as_json and self.stderr.is_terminal


def _progress(console: Console, disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )


class UploadBars:
    """One bar for all files, and one per file from its first progress on (updated from the
    uploads' threads, several files at once)."""

    def __init__(self, output: Output, total_bytes: int, files: int) -> None:
        self.progress = _progress(output.stderr, not output.bars)
        self.total = self.progress.add_task(f"{files} file(s)", total=total_bytes)
        self._files: dict[Path, TaskID] = {}
        self._done: dict[Path, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def shown(self) -> Iterator[UploadBars]:
        """The bars on screen while the block runs."""
        with self.progress:
            yield self

    def update(self, now: UploadProgress) -> None:
        """A progress callback: move the file's bar (added on its first call) and the total."""
        with self._lock:
            if now.path not in self._files:
                self._files[now.path] = self.progress.add_task(
                    escape(now.path.name), total=now.bytes_total
                )
            self._done[now.path] = now.bytes_done
            self.progress.update(self._files[now.path], completed=now.bytes_done)
            self.progress.update(self.total, completed=sum(self._done.values()))

    def finish(self, path: Path, size: int) -> None:
        """A file is done (or skipped): its whole size counts in the total."""
        with self._lock:
            self._done[path] = size
            if path in self._files:
                self.progress.update(self._files[path], completed=size)
            self.progress.update(self.total, completed=sum(self._done.values()))


class WaitBars:
    """One bar per image for its conversion's progress."""

    def __init__(self, output: Output, image_ids: list[str]) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% {task.fields[status]}"),
            console=output.stderr,
            disable=not output.bars,
        )
        self.tasks = {
            i: self.progress.add_task(f"converting {i[:10]}", total=1.0, status="")
            for i in image_ids
        }

    @contextmanager
    def shown(self) -> Iterator[WaitBars]:
        """The bars on screen while the block runs."""
        with self.progress:
            yield self

    def update(self, image: Image) -> None:
        """An on_change callback: move the image's bar."""
        if image.id in self.tasks:
            done = 1.0 if image.finished else image.progress
            self.progress.update(self.tasks[image.id], completed=done, status=image.status)
