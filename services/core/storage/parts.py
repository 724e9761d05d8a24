"""The rules of multipart uploads, S3's limits, which both backends apply alike."""

from plexzoom.core.errors import BadRequest, Conflict
from plexzoom.core.storage.base import Part

MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last (S3: EntityTooSmall)
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PART_NUMBER = 10_000


def check_part_number(number: int) -> None:
    """BadRequest unless ``number`` is a whole number from 1 to 10,000."""
    whole = isinstance(number, int) and not isinstance(number, bool)
    if not whole or not 1 <= number <= MAX_PART_NUMBER:
        raise BadRequest(f"A part number is a whole number from 1 to {MAX_PART_NUMBER}.")


def ordered_parts(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The parts that complete an upload, ascending by number, ETags without quotes.

    The list may come in any order (parts upload in parallel); naming a part twice is refused.
    """
    if not parts:
        raise BadRequest("An upload is completed with at least one part.")
    for number, _ in parts:
        check_part_number(number)
    ordered = sorted((number, etag.strip('"')) for number, etag in parts)
    numbers = [number for number, _ in ordered]
    if len(set(numbers)) != len(numbers):
        raise BadRequest("The list of parts names a part more than once.")
    return ordered


def check_parts(wanted: list[tuple[int, str]], stored: list[Part]) -> None:
    """Conflict unless each wanted (number, ETag) is a stored part; BadRequest when a part but
    the last is under 5 MiB. ``wanted`` is ascending (see ordered_parts); ``stored`` may hold
    several parts of one number (SeaweedFS keeps each upload of a number until completion)."""
    found = {(part.number, part.etag): part for part in stored}
    for number, etag in wanted:
        if (number, etag) not in found:
            raise Conflict(
                f"Part {number} is not stored with ETag {etag}; "
                "list the parts and complete with those."
            )
    for number, etag in wanted[:-1]:
        if found[number, etag].size < MIN_PART_SIZE:
            raise BadRequest(
                f"Part {number} has {found[number, etag].size} bytes: every part but the last must "
                "have at least 5 MiB; upload it again larger."
            )
