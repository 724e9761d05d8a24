"""Tile tokens, API key checks and the shared token secret."""

import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from plexzoom.core.access import (
    AccessPolicy,
    TokenSigner,
    bearer_key,
    key_fingerprint,
    load_or_create_secret,
    match_key,
)
from plexzoom.core.errors import Forbidden, NotAuthenticated

SECRET = b"0123456789abcdef0123456789abcdef"
A, B = "01jaaaaaaaaaaaaaaaaaaaaaaa", "01jbbbbbbbbbbbbbbbbbbbbbbb"
GEN, OTHER_GEN = "aaaaaaaaaaaa", "bbbbbbbbbbbb"


def test_a_token_opens_its_image_generation_until_it_expires() -> None:
    signer = TokenSigner(SECRET, ttl_s=60)
    token = signer.issue(A, GEN)
    assert signer.check(token.value, A, GEN) == token.expires
    assert 59 <= token.seconds_left() <= 60
    expired = signer.issue(A, GEN, now=time.time() - 120)
    with pytest.raises(NotAuthenticated, match="expired"):
        signer.check(expired.value, A, GEN)


@pytest.mark.parametrize(
    "where", [(B, GEN), (A, OTHER_GEN)], ids=["other image", "other generation"]
)
def test_a_token_opens_nothing_else(where: tuple[str, str]) -> None:
    signer = TokenSigner(SECRET, ttl_s=60)
    token = signer.issue(A, GEN).value
    with pytest.raises(Forbidden):
        signer.check(token, *where)


def test_forged_and_malformed_tokens_are_refused() -> None:
    signer = TokenSigner(SECRET, ttl_s=60)
    token = signer.issue(A, GEN)
    later = f"{token.expires + 3600}.{token.value.split('.')[1]}"  # a longer life, same signature
    other_secret = TokenSigner(b"another secret, 32 bytes long..", ttl_s=60).issue(A, GEN).value
    for bad in (later, other_secret, "x", ".", "12.", "-5.abc", token.value + "A" * 80):
        with pytest.raises(Forbidden):
            signer.check(bad, A, GEN)
    for missing in (None, ""):
        with pytest.raises(NotAuthenticated):
            signer.check(missing, A, GEN)


def test_keys_are_matched_exactly_and_named_by_fingerprint() -> None:
    keys = ("alpha-key", "beta-key")
    assert match_key("beta-key", keys)
    assert not match_key("beta-ke", keys)
    assert not match_key("", keys)
    assert bearer_key("Bearer beta-key") == "beta-key"
    assert bearer_key("bearer  beta-key ") == "beta-key"
    assert bearer_key("Basic YTpi") is None
    assert bearer_key("Bearer ") is None
    assert bearer_key(None) is None
    fingerprint = key_fingerprint("beta-key")
    assert len(fingerprint) == 8 and "beta" not in fingerprint
    assert fingerprint != key_fingerprint("alpha-key")


def test_the_policy_is_open_only_without_keys() -> None:
    assert AccessPolicy().is_open
    policy = AccessPolicy(("k1",), TokenSigner(SECRET, 60))
    assert not policy.is_open
    assert policy.knows_key("Bearer k1")
    assert not policy.knows_key("Bearer k2")
    with pytest.raises(ValueError):
        AccessPolicy(("k1",))


def test_the_secret_file_is_created_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "token-secret"
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_secret(path), range(16)))
    assert len(secrets) == 1
    assert len(secrets.pop()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["token-secret"]  # no temp files left
    assert load_or_create_secret(path) == path.read_text().strip().encode()
