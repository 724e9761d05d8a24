"""docker-compose.yml, checked offline: the Compose specification's schema, then what a schema
cannot know (health checks, users, telemetry, loopback ports, the services, .env.example).

No Docker engine runs here; each check is also shown to fail on a deliberately broken copy.
"""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

SERVICES = {"redis", "s3", "api", "tiles", "worker", "maintenance"}
PLEXZOOM = {"api", "tiles", "worker", "maintenance"}
# ${NAME}, ${NAME:-default}, ${NAME:?message}; $$ escapes a dollar sign.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")

Compose = dict[str, Any]


def schema_errors(path: Path) -> str:
    """check-jsonschema's report on the file; empty when it conforms to the Compose spec."""
    run = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if run.returncode == 0 else run.stdout + run.stderr


def env_example_names(path: Path = ENV_EXAMPLE) -> set[str]:
    """The variable names .env.example sets (comments and blank lines aside)."""
    lines = path.read_text().splitlines()
    return {line.split("=", 1)[0].strip() for line in lines if "=" in line and line[:1] != "#"}


def service_set(compose: Compose) -> list[str]:
    """Problems: the services are not exactly the six this deployment has."""
    found = set(compose.get("services", {}))
    return [] if found == SERVICES else [f"services {sorted(found)} != {sorted(SERVICES)}"]


def healthchecks(compose: Compose) -> list[str]:
    """Problems: a service without a health check (others wait on service_healthy)."""
    return [
        f"{name}: no healthcheck"
        for name, service in compose["services"].items()
        if not service.get("healthcheck", {}).get("test")
    ]


def non_root(compose: Compose) -> list[str]:
    """Problems: a plexzoom service that does not run as uid 10001 on a read-only root."""
    problems = []
    for name in PLEXZOOM & set(compose["services"]):
        service = compose["services"][name]
        if str(service.get("user", "")).split(":")[0] != "10001":
            problems.append(f"{name}: user is {service.get('user')!r}, not 10001")
        if service.get("read_only") is not True:
            problems.append(f"{name}: root filesystem is writable")
    return problems


def telemetry_off(compose: Compose) -> list[str]:
    """Problems: SeaweedFS started without -master.telemetry=false (it phones home by default)."""
    command = compose["services"].get("s3", {}).get("command", [])
    words = command.split() if isinstance(command, str) else command
    return [] if "-master.telemetry=false" in words else ["s3: telemetry is not off"]


def host_ip(port: object) -> object:
    """The host address a port is published on; None when it has none (that is 0.0.0.0)."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).split(":")
    return parts[0] if len(parts) == 3 else None


def loopback_ports(compose: Compose) -> list[str]:
    """Problems: a published port not bound to 127.0.0.1."""
    return [
        f"{name}: port {port!r} is not bound to 127.0.0.1"
        for name, service in compose["services"].items()
        for port in service.get("ports", [])
        if host_ip(port) != "127.0.0.1"
    ]


def waits_healthy(compose: Compose) -> list[str]:
    """Problems: a plexzoom service that starts before what it needs is healthy."""
    problems = []
    for name in PLEXZOOM & set(compose["services"]):
        needs = compose["services"][name].get("depends_on")
        if not isinstance(needs, dict) or not needs:
            problems.append(f"{name}: depends_on must name services with conditions")
            continue
        problems += [
            f"{name}: waits for {other} without service_healthy"
            for other, how in needs.items()
            if how.get("condition") != "service_healthy"
        ]
    return problems


def variables_listed(text: str, listed: set[str]) -> list[str]:
    """Problems: a ${VAR} the file uses that .env.example does not set."""
    return [
        f"${{{name}}} is not in .env.example"
        for name in sorted(set(VARIABLE.findall(text)) - listed)
    ]


CHECKS: list[Callable[[Compose], list[str]]] = [
    service_set,
    healthchecks,
    non_root,
    telemetry_off,
    loopback_ports,
    waits_healthy,
]


def problems_of(path: Path, listed: set[str]) -> list[str]:
    """Every check's problems with the compose file at ``path``."""
    text = path.read_text()
    compose = yaml.safe_load(text)
    found = variables_listed(text, listed)
    for check in CHECKS:
        found += check(compose)
    return found


def test_conforms_to_the_compose_spec() -> None:
    assert schema_errors(COMPOSE) == ""


def test_passes_every_check() -> None:
    assert problems_of(COMPOSE, env_example_names()) == []


def test_env_example_sets_no_secret() -> None:
    """The required secrets are left empty, so compose refuses to start until they are set."""
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and line[:1] != "#"
    )
    for name in ("PLEXZOOM_API_KEYS", "PLEXZOOM_TOKEN_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        assert values[name] == ""
        assert f"${{{name}:?" in COMPOSE.read_text()


def test_seaweedfs_identities_are_json() -> None:
    """The s3.json config, with its variables filled in, is the identity format weed reads."""
    content = yaml.safe_load(COMPOSE.read_text())["configs"]["s3-identities"]["content"]
    filled = re.sub(r"\$\{(S3_[A-Z_]+):\?[^}]*\}", lambda m: m.group(1).lower(), content)
    (identity,) = json.loads(filled)["identities"]
    assert identity["credentials"] == [{"accessKey": "s3_access_key", "secretKey": "s3_secret_key"}]
    assert {"Admin", "Read", "List", "Write"} <= set(identity["actions"])


def _drop_api_healthcheck(compose: Compose) -> None:
    del compose["services"]["api"]["healthcheck"]


def _root_worker(compose: Compose) -> None:
    compose["services"]["worker"]["user"] = "0:0"


def _telemetry_on(compose: Compose) -> None:
    compose["services"]["s3"]["command"].remove("-master.telemetry=false")


def _public_port(compose: Compose) -> None:
    compose["services"]["api"]["ports"] = ["8000:8000"]


def _extra_service(compose: Compose) -> None:
    compose["services"]["minio"] = {"image": "minio/minio", "healthcheck": {"test": ["NONE"]}}


def _unordered_start(compose: Compose) -> None:
    compose["services"]["tiles"]["depends_on"] = ["api"]


BREAKS = {
    "healthchecks": _drop_api_healthcheck,
    "non_root": _root_worker,
    "telemetry_off": _telemetry_on,
    "loopback_ports": _public_port,
    "service_set": _extra_service,
    "waits_healthy": _unordered_start,
}


@pytest.mark.parametrize("check", sorted(BREAKS))
def test_a_broken_copy_fails_its_check(check: str, tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    BREAKS[check](compose)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose, sort_keys=False))
    assert schema_errors(broken) == ""  # still a valid Compose file: only our check sees it
    assert problems_of(broken, env_example_names()) != []
    assert next(c for c in CHECKS if c.__name__ == check)(compose) != []


def test_an_unlisted_variable_fails(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace("${PLEXZOOM_LOG_FORMAT:-text}", "${LOG_LEVEL:-info}")
    )
    assert problems_of(broken, env_example_names()) == ["${LOG_LEVEL} is not in .env.example"]


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda c: c["services"]["api"].update(ports=8000), id="ports-bare-int"),
        pytest.param(lambda c: c.update(x_settings={"a": 1}), id="unknown-top-level-key"),
        pytest.param(
            lambda c: c["services"]["redis"].update(restart=True), id="restart-not-a-string"
        ),
    ],
)
def test_the_schema_rejects_a_broken_copy(
    breakage: Callable[[Compose], None], tmp_path: Path
) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    breakage(compose)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose, sort_keys=False))
    assert schema_errors(broken) != ""
