"""Schemathesis against the app's own /openapi.json: whatever it sends, never a 5xx."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from plexzoom.api.config import ApiSettings
from plexzoom.api.main import create_app
from plexzoom.core.storage import LocalStorage
from tests.api.conftest import FakeBroker, RecordingEnqueue

KEY = "schemathesis-key-41f0"
EXAMPLES = 30  # per operation and credential; a few seconds in all


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    """The schema of an app with an API key, over local-folder storage."""
    root: Path = tmp_path_factory.mktemp("openapi")
    app_settings = ApiSettings(
        data_dir=root / "data", viewer_dir=root / "no-viewer", api_keys=KEY, token_ttl_s=60
    )
    storage = LocalStorage(root / "data")
    app = create_app(app_settings, storage, RecordingEnqueue(), FakeBroker().ping)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_is_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, with the key, without one and with a wrong one: 2xx or 4xx, never 5xx;
    /v1 needs the key. (Schemathesis' own pytest plugin does not run under pytest 9 yet, so the
    operations' Hypothesis strategies are driven here.)"""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /v1/images",
        "POST /v1/images",
        "PUT /v1/images/{image_id}/public",
        "PUT /v1/images/{image_id}/render",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: schemathesis.Case) -> None:
            for authorization in (f"Bearer {KEY}", None, "Bearer not-a-key"):
                if case.headers:
                    case.headers.pop("Authorization", None)
                headers = {"Authorization": authorization} if authorization else {}
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error])
                if authorization != f"Bearer {KEY}" and case.path.startswith("/v1/"):
                    assert response.status_code == 401, (case.method, case.formatted_path)

        check()
