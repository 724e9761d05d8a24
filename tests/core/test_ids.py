"""Image ids sort newest first yet stay unguessable; generations are random."""

import itertools

import pytest

from plexzoom.core.ids import is_generation, is_image_id, new_generation, new_image_id

CROCKFORD = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_an_image_id_is_26_crockford_characters() -> None:
    """Ids use lower-case Crockford base32 (no i, l, o, u) and pass their own check."""
    for image_id in (new_image_id() for _ in range(200)):
        assert len(image_id) == 26
        assert set(image_id) <= CROCKFORD
        assert is_image_id(image_id)


@pytest.mark.parametrize("ms", [0, 1, 1_700_000_000_000, 2**48 - 2, 2**48 - 1])
def test_ids_of_any_time_keep_their_shape(ms: int) -> None:
    """The time part fills exactly 10 characters from the epoch to the end of 48-bit time."""
    assert is_image_id(new_image_id(now_ms=ms))


def test_a_newer_id_sorts_before_an_older_one() -> None:
    """One millisecond later always sorts first, whatever the random parts are."""
    for ms in (1_700_000_000_000, 1_700_000_000_031, 1_700_000_001_023):
        older = [new_image_id(now_ms=ms) for _ in range(50)]
        newer = [new_image_id(now_ms=ms + 1) for _ in range(50)]
        assert all(n < o for n, o in itertools.product(newer, older))


def test_ids_listed_ascending_come_out_newest_first() -> None:
    """Sorting ids as strings (what a storage listing does) gives newest first."""
    times = [1_700_000_000_000 + 37 * i for i in range(100)]
    ids = {new_image_id(now_ms=ms): ms for ms in times}
    assert [ids[i] for i in sorted(ids)] == sorted(times, reverse=True)


def test_the_current_time_is_used_by_default() -> None:
    """An id made now sorts before one made a second ago, and after one made a second ahead."""
    import time

    now_ms = int(time.time() * 1000)
    made_now = new_image_id()
    assert new_image_id(now_ms=now_ms + 1000) < made_now < new_image_id(now_ms=now_ms - 1000)


def test_ids_of_the_same_millisecond_differ_in_80_random_bits() -> None:
    """Ids made in the same millisecond share the time part and never collide."""
    ids = [new_image_id(now_ms=1_700_000_000_000) for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert len({i[:10] for i in ids}) == 1
    for position in range(10, 26):  # every random character varies
        assert len({i[position] for i in ids}) > 16


def test_generations_are_12_random_characters() -> None:
    """Generations are short, random and pass their own check (not an image id's)."""
    generations = [new_generation() for _ in range(2000)]
    assert len(set(generations)) == len(generations)
    for generation in generations[:100]:
        assert is_generation(generation)
        assert not is_image_id(generation)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../etc/passwd",
        "0" * 25,
        "0" * 27,
        "0" * 25 + "i",
        "0" * 25 + "l",
        "0" * 25 + "o",
        "0" * 25 + "u",
        "0" * 25 + "A",
        "0" * 25 + "/",
        "0" * 25 + "\x00",
        " " + "0" * 26,
        "0" * 26 + "/manifest.json",
    ],
)
def test_non_ids_are_refused(text: str) -> None:
    """Text that is not exactly an id's shape is refused."""
    assert not is_image_id(text)


@pytest.mark.parametrize(
    "text", ["", "0" * 11, "0" * 13, "0" * 11 + "i", "0" * 11 + "A", "..", "0" * 11 + "/"]
)
def test_non_generations_are_refused(text: str) -> None:
    """Text that is not exactly a generation's shape is refused."""
    assert not is_generation(text)


def test_a_trailing_newline_is_refused() -> None:
    """'$' matches before a final newline; an id check must not let one through into a key."""
    assert not is_image_id(new_image_id() + "\n")
    assert not is_generation(new_generation() + "\n")
