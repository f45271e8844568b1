"""A `kubernetes.version` other than the running cluster's is refused before any plan.

Fact: the version skew policy (kubernetes.io/releases/version-skew-policy) forbids kubelets
newer than kube-apiserver; nodes made from a changed version would carry them. The message
names `provision plan` (the upgrade's preflight) and `provision upgrade`, which changes the
version in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.pipeline.prepare import prepare
from provisioner.pipeline.running import Running, check_version
from tests.support.rendering import ROOT


def _prepared(tmp_path: Path, version: str) -> tuple[Path, object]:
    config = tmp_path / "prod.yaml"
    text = (ROOT / "examples" / "production.yaml").read_text()
    config.write_text(text.replace('version: "1.36.2"', f'version: "{version}"'))
    return config, prepare(config, None)


def test_a_changed_version_is_refused_naming_file_line_and_key(tmp_path: Path) -> None:
    config, prepared = _prepared(tmp_path, "1.36.3")
    running = Running(None, "1.36.2", {"prod-cp-1": "1.36.2", "prod-general-1-abcde": "1.36.2"})
    with pytest.raises(ConfigError) as caught:
        check_version(prepared, running)  # type: ignore[arg-type]
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1)
                if "version:" in text and "1.36.3" in text)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert message.startswith(f"{config}:{line}: kubernetes.version: the cluster runs "
                              "Kubernetes 1.36.2"), message
    assert f"`provision plan {config}` shows the upgrade's preflight findings" in message
    assert f"`provision upgrade {config}` changes the running cluster's version" in message


def test_the_running_version_passes(tmp_path: Path) -> None:
    _, prepared = _prepared(tmp_path, "1.36.2")
    running = Running(None, "1.36.2", {"prod-cp-1": "1.36.2"})
    check_version(prepared, running)  # type: ignore[arg-type]


def test_kubelets_of_another_version_are_named(tmp_path: Path) -> None:
    _, prepared = _prepared(tmp_path, "1.36.2")
    running = Running(None, "1.36.2", {"a": "1.36.2", "b": "1.35.9"})
    with pytest.raises(ConfigError, match=r"kubelets: 1\.35\.9"):
        check_version(prepared, running)  # type: ignore[arg-type]
