"""The api service: uploads, status, events, hooks, the viewer's files and /metrics.

Run alone with ``python -m plexzoom.api``; ``make run`` serves it with the tile service on one
origin (plexzoom.web).
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import redis
from fastapi import Depends, FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client.registry import Collector

from plexzoom.api.config import ApiSettings
from plexzoom.api.errors import install_error_handlers
from plexzoom.api.routes import events as event_routes
from plexzoom.api.routes import formats, health, hooks, images, render
from plexzoom.api.routes import uploads as upload_routes
from plexzoom.api.routes.events import EventHub
from plexzoom.api.security import require_key
from plexzoom.core.accesslog import log_requests_to_stderr
from plexzoom.core.eventlog import EventingStorage, EventLog
from plexzoom.core.images import Enqueue
from plexzoom.core.libvips import restrict_loaders
from plexzoom.core.logs import configure_logging
from plexzoom.core.metrics import RequestMetrics, exposition, fastapi_route, process_exited
from plexzoom.core.pixels import PixelLookup
from plexzoom.core.queue import (
    QueueDepth,
    connect_broker,
    enqueue_conversion,
    enqueue_inbox_object,
    ping,
)
from plexzoom.core.storage import S3Storage, Storage
from plexzoom.core.uploads import PartUrls
from plexzoom.middleware import wrap_app
from plexzoom.settings import build_access, build_storage, token_secret

log = logging.getLogger(__name__)
ASGIApp = Any
# What create_api needs besides settings and storage: enqueue, the broker probe, the inbox
# hint, the event log and the queue-depth collector.
ApiCollaborators = tuple[
    Enqueue, Callable[[], None], Callable[[str], None] | None, EventLog | None, Collector | None
]
_VENDOR = {
    "/vendor/openseadragon": "node_modules/openseadragon/build/openseadragon",
    "/vendor/swagger-ui": "node_modules/swagger-ui-dist",
    "/vendor/uppy": "node_modules/uppy/dist",
    "/vendor/hash-wasm": "node_modules/hash-wasm/dist",
}


def create_api(
    settings: ApiSettings,
    storage: Storage,
    enqueue: Enqueue,
    ping_broker: Callable[[], None],
    enqueue_hint: Callable[[str], None] | None = None,
    events: EventLog | None = None,
    queue_depth: Collector | None = None,
) -> FastAPI:
    """The FastAPI app with its routes, error table, docs, /metrics and static viewer.

    ``enqueue_hint`` queues an inbox key an S3 event named (the hook's work for the worker);
    ``events``: the Redis stream image events go to (record writes publish, /v1/events reads);
    ``queue_depth``: read into /metrics at each scrape.
    """
    hub = EventHub(settings.redis_url, events) if events and settings.redis_url else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if hub is not None:
            await hub.close()
        process_exited()

    api = FastAPI(
        title="plexzoom",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Upload huge images; get Deep Zoom pyramids and a browser viewer.",
        lifespan=lifespan,
    )
    api.state.settings, api.state.events = settings, hub
    api.state.storage = EventingStorage(storage, events) if events is not None else storage
    api.state.access = build_access(settings)
    api.state.enqueue, api.state.ping_broker = enqueue, ping_broker
    api.state.enqueue_hint = enqueue_hint
    api.state.forget_image = lambda _image_id: None
    api.state.pixels = PixelLookup(storage)
    api.state.part_urls = PartUrls(partial(token_secret, settings))
    install_error_handlers(api)
    api.include_router(images.router)
    api.include_router(render.router)
    api.include_router(formats.router)
    api.include_router(event_routes.router)
    api.include_router(health.router)
    api.include_router(upload_routes.router)
    if not settings.uses_s3:  # part URLs the api serves itself (S3 presigns its own)
        api.include_router(upload_routes.part_router)
    if settings.s3_hook_token is not None and enqueue_hint is not None:
        api.include_router(hooks.router)

    @api.get("/metrics", include_in_schema=False, dependencies=[Depends(require_key)])
    def metrics() -> Response:
        """Prometheus text: this service's processes (and, under make run, the worker's)."""
        extra = (lambda registry: registry.register(queue_depth)) if queue_depth else None
        body, content_type = exposition(extra)
        return Response(body, media_type=content_type)

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="plexzoom API",
            swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/vendor/swagger-ui/favicon-32x32.png",
        )

    _mount_static(api, settings.viewer_dir)
    return api


def _mount_static(api: FastAPI, viewer_dir: Path) -> None:
    """Serve the viewer and its npm packages (never a CDN: users may be offline)."""
    for url, folder in _VENDOR.items():
        path = viewer_dir / folder
        if path.is_dir():
            api.mount(url, StaticFiles(directory=path), name=url.strip("/"))
        else:
            log.warning("%s is missing; run `make install` to fetch the viewer's packages", path)
    if viewer_dir.is_dir():
        api.mount("/", StaticFiles(directory=viewer_dir, html=True), name="viewer")


def create_app_from_env() -> ASGIApp:
    """The api alone, built from PLEXZOOM_* settings (the uvicorn factory)."""
    settings, storage, collaborators = api_parts_from_env()
    api = create_api(settings, storage, *collaborators)
    return RequestMetrics(wrap_app(api, settings), "api", fastapi_route)


def api_parts_from_env() -> tuple[ApiSettings, Storage, ApiCollaborators]:
    """Settings, storage, and what create_api needs besides (enqueue, broker probe, inbox
    hints, event log), from PLEXZOOM_* settings."""
    restrict_loaders()  # server renders decode channel tiles to mix them
    settings = ApiSettings()
    configure_logging(settings.log_format)
    log_requests_to_stderr()
    if not settings.api_key_list:
        # make run refuses other interfaces without keys; a uvicorn started by hand is not checked.
        log.warning("no API keys (PLEXZOOM_API_KEYS): the API is open; serve it on loopback only")
    storage = build_storage(settings, agent="plexzoom-api")
    if isinstance(storage, S3Storage):
        # Browsers read pyramids (presigned mode) and PUT upload parts straight to the bucket.
        storage.ensure_bucket(list(settings.s3_cors_origins))
    broker = connect_broker(settings.redis_url)
    events = None
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        events = EventLog(client, history=settings.events_history)
    collaborators: ApiCollaborators = (
        lambda i: enqueue_conversion(broker, i),
        lambda: ping(broker),
        lambda key: enqueue_inbox_object(broker, key),
        events,
        QueueDepth(broker.client),
    )
    return settings, storage, collaborators
