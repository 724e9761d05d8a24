"""Which server and key the command uses: flags, else environment, else the config file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plexzoom.client.client import DEFAULT_URL


class ConfigError(Exception):
    """The config file or a setting cannot be used (a usage error: exit 2)."""


@dataclass(frozen=True)
class Target:
    """A server URL and the API key to send (None: the server has no keys)."""

    url: str
    key: str | None


def config_path(environ: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME/plexzoom/config.toml (default ~/.config/plexzoom/config.toml)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plexzoom" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    """The config file's ``url`` and ``key`` (a missing file is an empty config)."""
    try:
        with path.open("rb") as file:
            body = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"The config file {path} cannot be read: {exc}") from exc
    found: dict[str, str] = {name: body[name] for name in ("url", "key") if name in body}
    wrong = [name for name, value in found.items() if not isinstance(value, str)]
    if wrong:
        raise ConfigError(f"In {path}, {' and '.join(wrong)} must be a string in quotes.")
    return found


def resolve(url: str | None, key: str | None, environ: Mapping[str, str] | None = None) -> Target:
    """The server and key: each from its flag, else PLEXZOOM_URL / PLEXZOOM_KEY, else the
    config file, else http://127.0.0.1:8000 and no key."""
    env = os.environ if environ is None else environ
    file = read_config(config_path(env))
    url = url or env.get("PLEXZOOM_URL") or file.get("url") or DEFAULT_URL
    key = key or env.get("PLEXZOOM_KEY") or file.get("key") or None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"The server URL must start with http:// or https://, not {url!r}.")
    return Target(url.rstrip("/"), key)
