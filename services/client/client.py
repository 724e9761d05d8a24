"""The plexzoom HTTP API as a typed, synchronous Python client (usable from a notebook)."""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from plexzoom.client.errors import PlexzoomError, check, unreachable
from plexzoom.client.models import (
    Image,
    ImagePage,
    SignedPart,
    StoredPart,
    Upload,
    UploadProgress,
    UploadResult,
)

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "plexzoom-client/0.1"


class Client:
    """One plexzoom server: ``Client("http://host:8000", key="...")``; close it, or use ``with``.

    ``transport`` replaces httpx's network transport (tests); ``state_dir`` is where unfinished
    uploads are remembered (default ``$XDG_STATE_HOME/plexzoom/uploads``).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.state_dir = state_dir
        headers = {"user-agent": USER_AGENT}
        if key:
            headers["authorization"] = f"Bearer {key}"
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )
        # Part URLs are presigned: they get no Authorization header, so a client of their own.
        # Its connections are not capped: the part threads (files x parallel) are the cap.
        self.parts_http = httpx.Client(
            headers={"user-agent": USER_AGENT},
            timeout=httpx.Timeout(300.0, connect=10.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()
        self.parts_http.close()

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One API request; its response, or the error that fits its status."""
        try:
            response = self.http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from exc
        return check(response)

    # Images

    def status(self, image_id: str) -> Image:
        """An image's status, stage, progress, error and links."""
        return Image.from_json(self.call("GET", f"/v1/images/{image_id}").json())

    def list(self, limit: int = 50, cursor: str | None = None) -> ImagePage:
        """One page of images, newest first; pass ``next_cursor`` on for the next page."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = self.call("GET", "/v1/images", params=params).json()
        return ImagePage([Image.from_json(i) for i in body["images"]], body.get("next_cursor"))

    def images(self, page_size: int = 100) -> Iterator[Image]:
        """Every image, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = self.list(page_size, cursor)
            yield from page.images
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def delete(self, image_id: str) -> None:
        """Delete an image: its original, pyramids and record."""
        self.call("DELETE", f"/v1/images/{image_id}")

    def reconvert(self, image_id: str) -> Image:
        """Convert an image again (a new pyramid generation)."""
        return Image.from_json(self.call("POST", f"/v1/images/{image_id}/reconvert").json())

    def viewer_url(self, image_id: str) -> str:
        """The viewer page of an image."""
        viewer = self.status(image_id).links.get("viewer")
        return str(viewer) if viewer else f"{self.url}/view.html?id={image_id}"

    def upload(
        self,
        path: str | Path,
        *,
        variable: str | None = None,
        parallel: int = 4,
        progress: Callable[[UploadProgress], None] | None = None,
    ) -> UploadResult:
        """Upload a file in parts, resuming an earlier unfinished upload of the same file;
        ``progress`` is called (from the upload's threads) as bytes go out."""
        from plexzoom.client.upload import Uploader

        uploader = Uploader(self, parallel=parallel, progress=progress)
        return uploader.run(Path(path), variable=variable)

    def upload_many(
        self,
        paths: Iterable[str | Path],
        *,
        files: int = 2,
        parallel: int = 4,
        variable: str | None = None,
        progress: Callable[[UploadProgress], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Generator[tuple[Path, UploadResult | PlexzoomError]]:
        """Upload ``files`` files at a time, each ``parallel`` parts at a time (about files x
        parallel connections); yields each path with its result or its error as it ends.

        An auth error or an unreachable server stops the rest. Setting ``stop`` (or Ctrl-C
        while iterating, which is raised again) starts no more parts; unfinished files end
        with ``Stopped`` and resume when uploaded again.
        """
        from plexzoom.client.upload import Uploader

        uploader = Uploader(self, parallel=parallel, progress=progress, stop=stop)
        return uploader.run_many([Path(p) for p in paths], files, variable)

    def wait(
        self,
        image_ids: Iterable[str],
        timeout_s: float | None = None,
        on_change: Callable[[Image], None] | None = None,
    ) -> dict[str, Image]:
        """Wait until every image is ready or failed, following the event stream; each one's
        final status. Raises WaitTimeout after ``timeout_s``."""
        from plexzoom.client.events import Waiter

        return Waiter(self, timeout_s, on_change).run(image_ids)

    # The resumable upload protocol (README, "Resumable uploads")

    def create_upload(self, size: int, name: str, variable: str | None = None) -> Upload:
        """Start an upload of ``size`` bytes whose parts are signed and completed with their
        CRC-32s."""
        body = {"size": size, "name": name[:255], "variable": variable, "checksum": "crc32"}
        return Upload.from_json(self.call("POST", "/v1/uploads", json=body).json())

    def get_upload(self, upload_id: str) -> Upload:
        """An upload with the parts the server holds."""
        return Upload.from_json(self.call("GET", f"/v1/uploads/{upload_id}").json())

    def sign_parts(
        self, upload_id: str, crc32s: Mapping[int, str]
    ) -> tuple[builtins.list[SignedPart], int]:
        """Presigned URLs for parts, by number with each one's CRC-32 (base64), which the URL
        signs: the storage refuses other bytes. Also the seconds the URLs stay valid."""
        parts = [{"number": n, "crc32": crc32s[n]} for n in sorted(crc32s)]
        answer = self.call("POST", f"/v1/uploads/{upload_id}/parts", json={"parts": parts}).json()
        signed = [
            SignedPart(
                int(p["number"]), str(p["url"]), int(p["size"]), dict(p.get("headers") or {})
            )
            for p in answer["parts"]
        ]
        return signed, int(answer.get("expires_in", 3600))

    def complete_upload(self, upload_id: str, parts: Mapping[int, StoredPart]) -> Image:
        """Join the parts (their ETags, and CRC-32s where known); the conversion starts."""
        named = [
            {"number": n, "etag": parts[n].etag}
            | ({"crc32": parts[n].crc32} if parts[n].crc32 else {})
            for n in sorted(parts)
        ]
        body = self.call("POST", f"/v1/uploads/{upload_id}/complete", json={"parts": named})
        return Image.from_json(body.json())

    def abort_upload(self, upload_id: str) -> None:
        """Drop an unfinished upload and its parts."""
        self.call("DELETE", f"/v1/uploads/{upload_id}")

    @contextlib.contextmanager
    def event_stream(
        self, image_ids: Iterable[str], last_event_id: str | None, read_timeout_s: float
    ) -> Iterator[httpx.Response]:
        """The open /v1/events stream of some images (current state first, or after
        ``last_event_id``)."""
        headers = {"accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        params = httpx.QueryParams({"image": builtins.list(image_ids)})
        timeout = httpx.Timeout(10.0, read=read_timeout_s)
        try:
            with self.http.stream(
                "GET", "/v1/events", params=params, headers=headers, timeout=timeout
            ) as response:
                yield check(response)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from exc
