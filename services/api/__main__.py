"""``python -m plexzoom.api`` (or ``plexzoom-api``): the api alone (uploads, status, events,
hooks, viewer, /metrics) on PLEXZOOM_HOST:PLEXZOOM_PORT (default 127.0.0.1:8000)."""

import sys

from plexzoom.serve import serve_web


def main() -> int:
    """Serve the api until stopped."""
    return serve_web("plexzoom.api.main:create_app_from_env", default_port=8000)


if __name__ == "__main__":
    sys.exit(main())
