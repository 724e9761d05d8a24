"""The bucket's CORS rules on real S3 servers: one rule of plexzoom's, merged with others."""

import httpx
import pytest

from plexzoom.core.storage import S3Storage
from plexzoom.core.storage.s3 import CORS_RULE_ID

ORIGIN = "http://viewer.lab.example"
FOREIGN = {"ID": "lab-tool", "AllowedOrigins": ["http://tool.example"], "AllowedMethods": ["GET"]}


@pytest.fixture(params=["s3_storage", "seaweed_storage"])
def s3(request: pytest.FixtureRequest) -> S3Storage:
    found: S3Storage = request.getfixturevalue(request.param)
    return found


def _preflight(storage: S3Storage, origin: str, headers: str) -> httpx.Response:
    url = f"{storage.client.meta.endpoint_url}/{storage.bucket}/images/x/original?partNumber=1"
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_one_rule_of_plexzoom_s_next_to_an_operator_s(s3: S3Storage) -> None:
    """Written twice (two api starts), plexzoom's rule is there once, next to an operator's; it
    allows PUT and exposes ETag, which a browser needs to complete uploads."""
    s3.client.put_bucket_cors(Bucket=s3.bucket, CORSConfiguration={"CORSRules": [FOREIGN]})
    s3.set_cors([ORIGIN])
    s3.set_cors([ORIGIN])
    rules = s3.cors_rules()
    assert sorted(r.get("ID", "") for r in rules) == sorted(["lab-tool", CORS_RULE_ID])
    [ours] = [r for r in rules if r.get("ID") == CORS_RULE_ID]
    assert set(ours["AllowedMethods"]) == {"GET", "HEAD", "PUT"}
    assert {"ETag", "Content-Range"} <= set(ours["ExposeHeaders"])


def test_the_server_lets_the_viewer_put_parts(s3: S3Storage) -> None:
    """A browser's preflight of a part PUT from the viewer's origin is allowed (moto 5 checks
    every rule against the origin, so this runs with plexzoom's rule alone)."""
    s3.set_cors([ORIGIN])
    allowed = _preflight(s3, ORIGIN, "content-type")
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "PUT" in allowed.headers["access-control-allow-methods"]
    # The same preflight from an origin the rule does not name is not allowed.
    # The same preflight from an origin the rule does not name is refused (moto's server adds
    # its own allow-origin header to every answer, so the refusal is the status).
    other = _preflight(s3, "http://elsewhere.example", "content-type")
    assert other.status_code == 403


def test_a_bucket_without_rules_gets_plexzoom_s_rule(s3: S3Storage) -> None:
    assert s3.cors_rules() == []
    s3.ensure_bucket([ORIGIN])
    [rule] = s3.cors_rules()
    assert rule["AllowedOrigins"] == [ORIGIN]
