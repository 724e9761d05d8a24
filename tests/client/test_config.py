"""Where the command finds its server and key: flag, environment, config file, default."""

from pathlib import Path

import pytest

from plexzoom.client.config import ConfigError, Target, resolve


def config(tmp_path: Path, text: str) -> dict[str, str]:
    """An environment whose config file holds ``text``."""
    path = tmp_path / "plexzoom" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    env = config(tmp_path, 'url = "http://file:1"\nkey = "file-key"\n')
    assert resolve(None, None, env) == Target("http://file:1", "file-key")
    env |= {"PLEXZOOM_URL": "http://env:2/", "PLEXZOOM_KEY": "env-key"}
    assert resolve(None, None, env) == Target("http://env:2", "env-key")
    assert resolve("https://flag:3", "flag-key", env) == Target("https://flag:3", "flag-key")


def test_without_anything_the_local_server_and_no_key(tmp_path: Path) -> None:
    assert resolve(None, None, {"XDG_CONFIG_HOME": str(tmp_path)}) == Target(
        "http://127.0.0.1:8000", None
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [("url = http://x", "cannot be read"), ("key = 12", "must be a string"),
     ('url = "ftp://x"', "must start with http")],
)  # fmt: skip
def test_a_config_that_cannot_be_used_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(None, None, config(tmp_path, text))
