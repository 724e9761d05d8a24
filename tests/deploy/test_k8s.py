"""deploy/k8s: every overlay renders with kubectl's kustomize, every document is valid (Kubernetes
objects against the newest schemas kubernetes-validate bundles, KEDA's against cloudcoil's KEDA
models), and plexzoom's own rules hold; a broken manifest of each kind is caught."""

import copy
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication
from kubernetes_validate import utils as kube_schemas

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CI = bool(os.environ.get("CI"))
KUBECTL = shutil.which("kubectl")
KUBERNETES = kube_schemas.latest_version()  # offline: the schemas ship with the package
KEDA_MODELS: dict[str, Any] = {
    "ScaledObject": ScaledObject,
    "TriggerAuthentication": TriggerAuthentication,
}
QUEUE_LISTS = {"dramatiq:conversions", "dramatiq:conversions.DQ"}
Doc = dict[str, Any]
# What validate() raises for an invalid document (pydantic's ValidationError is a ValueError).
INVALID = (kube_schemas.ValidationError, ValueError)


def kustomize(directory: Path) -> list[Doc]:
    """The documents `kubectl kustomize directory` renders."""
    if KUBECTL is None:
        if CI:
            pytest.fail("kubectl is needed to render deploy/k8s (kubectl kustomize)")
        pytest.skip("kubectl is not installed: deploy/k8s cannot be rendered")
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def validate(doc: Doc) -> None:
    """Raise when the document is not a valid object of its kind: KEDA's resources by their
    models (no unknown field, no coerced type), the rest by Kubernetes' strict schemas."""
    model = KEDA_MODELS.get(doc["kind"]) if doc["apiVersion"].startswith("keda.sh/") else None
    if model is None:
        kube_schemas.validate(doc, KUBERNETES, strict=True)
        return
    # pydantic drops unknown fields and the models allow them: a round trip shows them.
    parsed = model.model_validate(doc, strict=True)
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if kept != doc:
        raise ValueError(f"{doc['kind']} has fields KEDA does not know: {doc} became {kept}")


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    """The documents of one kind, by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: Doc) -> Doc:
    """The pod template's spec of a Deployment."""
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """What a container's environment holds from its ConfigMaps and env (Secrets left out)."""
    maps = by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]].get("data", {})
    env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return env


def mebibytes(quantity: str) -> float:
    """A memory quantity ("9Gi", "640Mi", "512M", bytes) in MiB."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * units[suffix] / 2**20
    return float(quantity) / 2**20


def check_containers(docs: list[Doc]) -> None:
    """Every container runs as non-root, read-only, without privileges, with limits."""
    for deployment in by_kind(docs, "Deployment").values():
        pod = pod_spec(deployment)
        name = deployment["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), f"{name}: limits"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name}: requests"
        for volume in pod.get("volumes", []):
            if "emptyDir" in volume:
                assert "sizeLimit" in volume["emptyDir"], f"{name}: {volume['name']}"


def check_worker(docs: list[Doc]) -> None:
    """The worker's memory limit is above its conversion cap (times the conversions it runs at
    once) and its grace period outlasts a conversion and Dramatiq's shutdown wait."""
    deployment = by_kind(docs, "Deployment")["worker"]
    (container,) = pod_spec(deployment)["containers"]
    env = container_env(docs, container)
    assert env["PLEXZOOM_WORKER_ROLE"] == "convert"
    assert env["dramatiq_queue_prefetch"] == "1"
    at_once = int(env.get("PLEXZOOM_PROCESSES", "1")) * int(env.get("PLEXZOOM_THREADS", "1"))
    cap_mib = int(env["PLEXZOOM_CONVERT_MEMORY_MB"])
    assert cap_mib > 0, "the conversion cap must be set: the memory limit is derived from it"
    limit = mebibytes(container["resources"]["limits"]["memory"])
    assert limit > cap_mib * at_once, f"worker limit {limit} MiB <= cap {cap_mib} x {at_once}"
    least = float(env["PLEXZOOM_CONVERT_TIMEOUT_S"]) + 300
    shutdown = float(env["PLEXZOOM_WORKER_SHUTDOWN_TIMEOUT_S"])
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert shutdown >= least, f"shutdown timeout {shutdown} < {least}"
    assert grace >= max(least, shutdown), f"grace period {grace} < {max(least, shutdown)}"


def check_roles(docs: list[Doc]) -> None:
    """One maintenance replica, recreated; probes where the services answer; budgets."""
    deployments = by_kind(docs, "Deployment")
    maintenance = deployments["maintenance"]
    assert maintenance["spec"]["replicas"] == 1
    assert maintenance["spec"]["strategy"]["type"] == "Recreate"
    env = container_env(docs, pod_spec(maintenance)["containers"][0])
    assert env["PLEXZOOM_WORKER_ROLE"] == "maintain"
    for name in ("api", "tiles"):
        (container,) = pod_spec(deployments[name])["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz", name
        assert "tcpSocket" in container["livenessProbe"], f"{name}: liveness must not ask Redis"
    assert {"api", "tiles", "maintenance"} <= set(by_kind(docs, "PodDisruptionBudget"))
    assert {"api", "tiles"} <= set(by_kind(docs, "Service"))


def check_scaling(docs: list[Doc]) -> None:
    """KEDA scales the worker from zero on both of Dramatiq's lists; an HPA scales tiles."""
    scaled = by_kind(docs, "ScaledObject")["worker"]["spec"]
    assert scaled["minReplicaCount"] == 0
    assert scaled["maxReplicaCount"] >= 1
    assert "cooldownPeriod" in scaled
    redis = [t for t in scaled["triggers"] if t["type"] == "redis"]
    assert {t["metadata"]["listName"] for t in redis} == QUEUE_LISTS
    (worker,) = pod_spec(by_kind(docs, "Deployment")["worker"])["containers"]
    env = container_env(docs, worker)
    auths = by_kind(docs, "TriggerAuthentication")
    for trigger in redis:
        where = trigger["metadata"].get("addressFromEnv")
        assert where in env or "address" in trigger["metadata"], trigger
        if "authenticationRef" in trigger:
            assert trigger["authenticationRef"]["name"] in auths, trigger
    assert (
        by_kind(docs, "HorizontalPodAutoscaler")["tiles"]["spec"]["metrics"][0]["resource"]["name"]
        == "cpu"
    )


def check_rules(docs: list[Doc]) -> None:
    """plexzoom's rules for a rendered overlay."""
    check_containers(docs)
    check_worker(docs)
    check_roles(docs)
    check_scaling(docs)


def with_component(tmp_path: Path, overlay: str, component: str) -> list[Doc]:
    """An overlay rendered with one of its optional components."""
    base = os.path.relpath(K8S / "overlays" / overlay, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [base], "components": [f"{base}/{component}"]})
    )
    return kustomize(tmp_path)


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    """One overlay's documents."""
    return kustomize(K8S / "overlays" / request.param)


def test_every_document_is_valid(rendered: list[Doc]) -> None:
    for doc in rendered:
        validate(doc)


def test_plexzoom_rules_hold(rendered: list[Doc]) -> None:
    check_rules(rendered)


def test_overlays_differ_where_they_should() -> None:
    """dev brings its Secret, Redis and S3; prod expects the Secret and points elsewhere."""
    dev, prod = (kustomize(K8S / "overlays" / name) for name in ("dev", "prod"))
    assert "plexzoom" in by_kind(dev, "Secret")
    assert {"redis", "seaweedfs"} <= set(by_kind(dev, "Deployment"))
    assert all(by_kind(dev, "Deployment")[n]["spec"].get("replicas", 1) == 1 for n in ("api",))
    assert not by_kind(prod, "Secret")
    assert not {"redis", "seaweedfs"} & set(by_kind(prod, "Deployment"))
    config = by_kind(prod, "ConfigMap")["plexzoom"]["data"]
    assert "PLEXZOOM_REDIS_URL" not in config  # it carries a password: from the Secret
    assert config["PLEXZOOM_S3_PUBLIC_ENDPOINT_URL"].startswith("https://")
    weed = pod_spec(by_kind(dev, "Deployment")["seaweedfs"])["containers"][0]["command"]
    assert "-master.telemetry=false" in weed


def test_prod_with_sqs_and_the_secret_example(tmp_path: Path) -> None:
    """The optional SQS trigger renders and validates; so does the prod Secret's example."""
    docs = with_component(tmp_path, "prod", "sqs")
    for doc in docs:
        validate(doc)
    check_rules(docs)
    triggers = by_kind(docs, "ScaledObject")["worker"]["spec"]["triggers"]
    assert [t["type"] for t in triggers].count("aws-sqs-queue") == 1
    example = yaml.safe_load((K8S / "overlays" / "prod" / "secret.example.yaml").read_text())
    validate(example)


def _deployment(docs: list[Doc], name: str) -> Doc:
    return by_kind(docs, "Deployment")[name]


def _misspelled(docs: list[Doc]) -> None:
    container = pod_spec(_deployment(docs, "api"))["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")


def _wrong_type(docs: list[Doc]) -> None:
    _deployment(docs, "tiles")["spec"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"
    ] = "8001"


def _bad_trigger_field(docs: list[Doc]) -> None:
    by_kind(docs, "ScaledObject")["worker"]["spec"]["triggers"][0]["metdata"] = {}


def _scaled_object_wrong_type(docs: list[Doc]) -> None:
    by_kind(docs, "ScaledObject")["worker"]["spec"]["minReplicaCount"] = "0"


def _limit_below_cap(docs: list[Doc]) -> None:
    container = pod_spec(_deployment(docs, "worker"))["containers"][0]
    container["resources"]["limits"]["memory"] = "8Gi"
    container["resources"]["requests"]["memory"] = "8Gi"


def _two_threads(docs: list[Doc]) -> None:
    by_kind(docs, "ConfigMap")["plexzoom-worker"]["data"]["PLEXZOOM_THREADS"] = "2"


def _short_grace(docs: list[Doc]) -> None:
    pod_spec(_deployment(docs, "worker"))["terminationGracePeriodSeconds"] = 14400


def _root(docs: list[Doc]) -> None:
    pod_spec(_deployment(docs, "tiles"))["securityContext"]["runAsNonRoot"] = False


def _writable(docs: list[Doc]) -> None:
    pod_spec(_deployment(docs, "api"))["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ] = False


def _no_limits(docs: list[Doc]) -> None:
    del pod_spec(_deployment(docs, "maintenance"))["containers"][0]["resources"]["limits"]


def _two_maintainers(docs: list[Doc]) -> None:
    _deployment(docs, "maintenance")["spec"]["replicas"] = 2


def _one_list(docs: list[Doc]) -> None:
    by_kind(docs, "ScaledObject")["worker"]["spec"]["triggers"].pop()


def _never_zero(docs: list[Doc]) -> None:
    by_kind(docs, "ScaledObject")["worker"]["spec"]["minReplicaCount"] = 1


def _redis_liveness(docs: list[Doc]) -> None:
    container = pod_spec(_deployment(docs, "tiles"))["containers"][0]
    container["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}


SCHEMA_BREAKS = [_misspelled, _wrong_type, _bad_trigger_field, _scaled_object_wrong_type]
RULE_BREAKS = [
    _limit_below_cap,
    _two_threads,
    _short_grace,
    _root,
    _writable,
    _no_limits,
    _two_maintainers,
    _one_list,
    _never_zero,
    _redis_liveness,
]


@pytest.fixture(scope="module")
def prod() -> list[Doc]:
    """The prod overlay's documents (copied by each test that breaks them)."""
    return kustomize(K8S / "overlays" / "prod")


@pytest.mark.parametrize("breaking", SCHEMA_BREAKS, ids=lambda f: f.__name__.strip("_"))
def test_a_broken_manifest_is_invalid(prod: list[Doc], breaking: Callable[..., None]) -> None:
    docs = copy.deepcopy(prod)
    breaking(docs)
    with pytest.raises(INVALID):
        for doc in docs:
            validate(doc)


@pytest.mark.parametrize("breaking", RULE_BREAKS, ids=lambda f: f.__name__.strip("_"))
def test_a_broken_rule_is_caught(prod: list[Doc], breaking: Callable[..., None]) -> None:
    docs = copy.deepcopy(prod)
    breaking(docs)
    for doc in docs:  # still valid Kubernetes: only plexzoom's rules can catch it
        validate(doc)
    with pytest.raises(AssertionError):
        check_rules(docs)
