"""The passes every worker process runs on a clock: the reconciler and the inbox scanner."""

import logging
from collections.abc import Callable

from plexzoom.core.inbox import Inbox, scan_inbox
from plexzoom.core.reconcile import reconcile
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)
Enqueue = Callable[[str], None]


def reconcile_pass(
    storage: Callable[[], Storage],
    enqueue: Enqueue,
    queued_grace_s: float,
    upload_stale_s: float,
) -> Callable[[], None]:
    """One reconciler pass, logging what it did."""

    def run() -> None:
        done = reconcile(storage(), enqueue, queued_grace_s, upload_stale_s)
        for image_id in done.requeued:
            log.info("image %s queued again (its job was lost or stalled)", image_id)
        for prefix in done.removed:
            log.info("removed %s (named by no manifest)", prefix)

    return run


def inbox_pass(
    storage: Callable[[], Storage], enqueue: Enqueue, inbox: Inbox
) -> Callable[[], None]:
    """One scan of the inbox (each image taken is logged by core, by a hash of its key)."""

    def run() -> None:
        scan_inbox(storage(), inbox, enqueue)

    return run
