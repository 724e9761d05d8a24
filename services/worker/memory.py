"""Keep the worker's resident memory from creeping up under libvips' threads."""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas (MALLOC_ARENA_MAX) for threads started from now on.

    glibc gives busy threads arenas of their own; libvips' pool threads free tile buffers into
    many arenas that are never returned, so a long multi-channel conversion grew to 405 MiB
    where two arenas hold it at 266 MiB (8 x uint16 8192², README "Memory"). Returns whether
    the cap was set (not on other C libraries).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    ok = bool(mallopt(_M_ARENA_MAX, count))
    if not ok:
        log.info("mallopt(M_ARENA_MAX) is not supported here")
    return ok
