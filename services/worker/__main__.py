"""``python -m plexzoom.worker`` (or ``plexzoom-worker``): the worker alone (conversions, the
reconciler, the inbox scanner, webhooks), PLEXZOOM_PROCESSES x PLEXZOOM_THREADS; its metrics on
PLEXZOOM_METRICS_PORT."""

import sys

from plexzoom.serve import serve_worker


def main() -> int:
    """Become the Dramatiq worker."""
    return serve_worker()


if __name__ == "__main__":
    sys.exit(main())
