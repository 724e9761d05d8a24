"""``python -m plexzoom.tiles`` (or ``plexzoom-tiles``): the tile service alone (tiles,
/healthz, /metrics) on PLEXZOOM_HOST:PLEXZOOM_PORT (default 127.0.0.1:8001)."""

import sys

from plexzoom.serve import serve_web


def main() -> int:
    """Serve tiles until stopped."""
    return serve_web("plexzoom.tiles.main:create_app_from_env", default_port=8001)


if __name__ == "__main__":
    sys.exit(main())
