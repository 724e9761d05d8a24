"""The ``plexzoom`` command: upload images, follow their conversion and manage them from a shell.

Exit codes are in plexzoom.client.exits; expected failures print the server's sentence, never a
traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import webbrowser
from collections.abc import Iterable
from pathlib import Path

import click

from plexzoom.client.config import ConfigError, resolve
from plexzoom.client.console import Output, UploadBars
from plexzoom.client.errors import PlexzoomError, Stopped
from plexzoom.client.exits import Exit
from plexzoom.client.models import UploadResult
from plexzoom.client.session import Session, for_each, pass_session, wait_for


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="Server (else $PLEXZOOM_URL, the config file, or "
              "http://127.0.0.1:8000).")  # fmt: skip
@click.option("--key", metavar="KEY", help="API key (else $PLEXZOOM_KEY or the config file).")
@click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON object a line.")
@click.pass_context
def main(ctx: click.Context, url: str | None, key: str | None, as_json: bool) -> None:
    """Upload huge images to a plexzoom server and follow their conversion.

    Config file: $XDG_CONFIG_HOME/plexzoom/config.toml with `url` and `key`. Exit codes: 0 ok,
    1 an image failed or was refused, 2 usage, 3 server unreachable, 4 not authorised,
    5 not found, 6 wait timed out, 130 interrupted.
    """
    try:
        target = resolve(url, key)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = Session(target, Output(as_json))
    ctx.call_on_close(ctx.obj.close)


@main.command()
@click.argument("image_ids", nargs=-1, required=True, metavar="ID...")
@pass_session
def status(session: Session, image_ids: tuple[str, ...]) -> None:
    """Show images' status, progress and error."""
    code = for_each(session, image_ids, lambda i: session.output.image(session.client.status(i)))
    raise SystemExit(code)


@main.command(name="ls")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (default: all).")
@pass_session
def list_images(session: Session, limit: int | None) -> None:
    """List images, newest first."""
    try:
        for image in itertools.islice(session.client.images(), limit):
            session.output.image(image)
    except PlexzoomError as exc:
        raise SystemExit(session.failed("", exc, {})) from None


@main.command(name="rm")
@click.argument("image_ids", nargs=-1, required=True, metavar="ID...")
@pass_session
def remove(session: Session, image_ids: tuple[str, ...]) -> None:
    """Delete images: original, pyramids and record."""

    def delete(image_id: str) -> None:
        session.client.delete(image_id)
        session.output.record({"id": image_id, "deleted": True}, f"{image_id}  deleted")

    raise SystemExit(for_each(session, image_ids, delete))


@main.command()
@click.argument("image_ids", nargs=-1, required=True, metavar="ID...")
@pass_session
def reconvert(session: Session, image_ids: tuple[str, ...]) -> None:
    """Convert images again (a new pyramid generation)."""
    code = for_each(session, image_ids, lambda i: session.output.image(session.client.reconvert(i)))
    raise SystemExit(code)


@main.command(name="open")
@click.argument("image_id", metavar="ID")
@pass_session
def open_viewer(session: Session, image_id: str) -> None:
    """Open an image's viewer page in the web browser."""

    def show(image_id: str) -> None:
        url = session.client.viewer_url(image_id)
        session.output.record({"id": image_id, "viewer": url}, url)
        webbrowser.open(url)

    raise SystemExit(for_each(session, [image_id], show))


@main.command(name="wait")
@click.argument("image_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after this many seconds.")
@pass_session
def wait_images(session: Session, image_ids: tuple[str, ...], timeout: float | None) -> None:
    """Wait until images are ready or failed (follows the server's events)."""
    try:
        finals = wait_for(session, list(image_ids), timeout)
    except PlexzoomError as exc:
        raise SystemExit(session.failed("", exc, {"ids": list(image_ids)})) from None
    code = Exit.OK
    for image in finals.values():
        session.output.image(image)
        if image.status != "ready":
            code = code or Exit.FAILED
    raise SystemExit(code)


def files_in(paths: Iterable[Path]) -> list[Path]:
    """The files named and those in the folders named (recursively, hidden ones left out)."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            for inner in sorted(path.rglob("*")):
                hidden = any(p.startswith(".") for p in inner.relative_to(path).parts)
                if inner.is_file() and not hidden:
                    found.setdefault(inner.resolve(), inner)
        else:
            found.setdefault(path.resolve(), path)
    return list(found.values())


def describe(result: UploadResult) -> str:
    """An upload's result for people."""
    if result.parts == 0:
        sent = "uploaded by an earlier run"
    else:
        sent = f"{result.parts_sent} of {result.parts} parts sent"
        sent += f", {result.parts_reused} resumed" if result.parts_reused else ""
    return f"{result.path}  {result.image.id}  {result.image.status}  ({sent})"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--wait", "then_wait", is_flag=True, help="Wait until each image is ready or failed.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: seconds to wait.")
@click.option("--open", "then_open", is_flag=True, help="Open each image in the web browser.")
@click.option("--parallel", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parts sent at once, per file.")  # fmt: skip
@click.option("--files", "in_flight", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Files sent at once (connections: about files x parallel).")  # fmt: skip
@click.option("--variable", help="MATLAB/HDF5 files: the variable that holds the image.")
@pass_session
def upload(
    session: Session,
    paths: tuple[Path, ...],
    then_wait: bool,
    timeout: float | None,
    then_open: bool,
    parallel: int,
    in_flight: int,
    variable: str | None,
) -> None:
    """Upload files and folders (recursively); run it again to resume an interrupted upload."""
    files = files_in(paths)
    if not files:
        raise click.UsageError("There are no files in the folders given.")
    results, code = send_files(
        session,
        files,
        parallel=parallel,
        in_flight=in_flight,
        variable=variable,
        announce=not then_wait,
    )
    if then_wait and results:
        results = follow(session, results, timeout)
    for result in results:
        if result.image.status == "failed":
            session.output.problem(str(result.path), f"failed: {result.image.error}")
            code = code or Exit.FAILED
        if then_open and result.image.links.get("viewer"):
            webbrowser.open(str(result.image.links["viewer"]))
    raise SystemExit(code)


def follow(
    session: Session, results: list[UploadResult], timeout: float | None
) -> list[UploadResult]:
    """Wait for the uploads' conversions and print each upload with its final status."""
    try:
        finals = wait_for(session, [r.image.id for r in results], timeout)
    except PlexzoomError as exc:
        for result in results:
            session.output.record(result.as_json(), describe(result))
        raise SystemExit(session.failed("", exc, {})) from None
    results = [dataclasses.replace(r, image=finals[r.image.id]) for r in results]
    for result in results:
        session.output.record(result.as_json(), describe(result))
    return results


def send_files(
    session: Session,
    files: list[Path],
    *,
    parallel: int,
    in_flight: int,
    variable: str | None,
    announce: bool,
) -> tuple[list[UploadResult], Exit]:
    """Upload ``in_flight`` files at a time with progress bars (``announce``: print each result
    as its file ends); the results in the files' order and the first failure's exit code.
    Ctrl-C exits 130, the uploads kept to resume."""
    sizes = {path: path.stat().st_size for path in files}
    bars = UploadBars(session.output, sum(sizes.values()), len(files))
    uploads = session.client.upload_many(
        files, files=in_flight, parallel=parallel, variable=variable, progress=bars.update
    )
    results: list[UploadResult] = []
    code = Exit.OK
    with bars.shown(), contextlib.closing(uploads):
        try:
            for path, outcome in uploads:
                if isinstance(outcome, Stopped):  # another file's fatal error stopped it
                    continue
                bars.finish(path, sizes[path])
                if isinstance(outcome, PlexzoomError):
                    body = {"path": str(path), "image_id": None, "status": "error",
                            "size": sizes[path]}  # fmt: skip
                    code = code or session.failed(str(path), outcome, body)
                    continue
                results.append(outcome)
                if announce:
                    session.output.record(outcome.as_json(), describe(outcome))
        except KeyboardInterrupt:
            left = len(files) - len(results)
            resume = f"interrupted with {left} file(s) not uploaded; run the same command again"
            session.output.problem("", f"{resume} to resume.")
            raise SystemExit(Exit.INTERRUPTED) from None
    order = {path: n for n, path in enumerate(files)}
    return sorted(results, key=lambda r: order[r.path]), code
