"""FastAPI dependencies as typed aliases; tests swap them with app.dependency_overrides."""

from typing import Annotated

from fastapi import Depends, Request

from plexzoom.api.config import ApiSettings
from plexzoom.core.images import Enqueue
from plexzoom.core.storage import Storage


def get_settings(request: Request) -> ApiSettings:
    """The settings the app was built with."""
    settings: ApiSettings = request.app.state.settings
    return settings


def get_storage(request: Request) -> Storage:
    """The storage backend the app was built with."""
    storage: Storage = request.app.state.storage
    return storage


def get_enqueue(request: Request) -> Enqueue:
    """The function that queues a conversion."""
    enqueue: Enqueue = request.app.state.enqueue
    return enqueue


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
EnqueueDep = Annotated[Enqueue, Depends(get_enqueue)]
