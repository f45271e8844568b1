"""Every rendered manifest passes Kubernetes' own OpenAPI schemas, strictly, for its version."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.rendering import example, rendered

pytestmark = pytest.mark.oracle


def _documents() -> list[tuple[str, str, int, dict[str, Any]]]:
    cases = []
    for name in ("production", "staging"):
        for path, text in sorted(rendered(name).items()):
            if path.startswith(("manifests/", "autoscaler/")):
                for index, doc in enumerate(d for d in yaml.safe_load_all(text) if d):
                    cases.append((name, path, index, doc))
    return cases


CASES = _documents()


@pytest.mark.parametrize(("name", "path", "index", "document"), CASES,
                         ids=[f"{c[0]}:{c[1]}#{c[2]}:{c[3]['kind']}" for c in CASES])
def test_manifest_is_valid_for_the_cluster_version(name: str, path: str, index: int,
                                                   document: dict[str, Any]) -> None:
    version = example(name).kubernetes.version
    kubernetes_validate.validate(document, version, strict=True)


def test_production_renders_the_expected_objects() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"])
                   for n, path, _, doc in CASES if n == "production"
                   and path.startswith("manifests/"))
    assert kinds == sorted([
        ("Namespace", "prod"), ("ConfigMap", "global-config"),
        ("Deployment", "api-blue"), ("Service", "api"), ("HorizontalPodAutoscaler", "api"),
        ("PodDisruptionBudget", "api"),
        ("StatefulSet", "elasticsearch"), ("Service", "elasticsearch"),
        ("Service", "elasticsearch-headless"), ("PodDisruptionBudget", "elasticsearch"),
    ])


def test_oracle_rejects_an_unknown_field() -> None:
    """The oracle bites: a misspelt field in one of our Deployments is refused in strict mode."""
    deployment = next(doc for n, _, _, doc in CASES
                      if n == "production" and doc["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, example("production").kubernetes.version, strict=True)
