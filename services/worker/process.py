"""Set-up of every process that decodes images: the worker and each conversion child.

A conversion child is spawned, so it inherits none of the worker's process-wide settings;
both call this one function.
"""

import logging

from plexzoom.core.libvips import restrict_loaders
from plexzoom.worker.memory import limit_malloc_arenas


def prepare_decoding_process(malloc_arenas: int) -> None:
    """Cap malloc arenas (before libvips starts threads), allow only the libvips loaders
    plexzoom reads with, and quieten libvips' INFO logs."""
    limit_malloc_arenas(malloc_arenas)
    restrict_loaders()  # uploads are decoded here: only the allow-listed loaders may run
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # it logs every threadpool at INFO
