"""Hostile strings in free-text values never change the structure of any output.

Each value goes in through a real YAML file, and every output is parsed back (PyYAML for
manifests and cloud-init, JSON for tfvars, python-hcl2 for the module) and compared.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import hcl2
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from provisioner.config import parse
from provisioner.render import render_environment
from tests.support.rendering import ROOT

NASTY = ["'", '"', "\\", "${", "%{", "{{", "}}", "{%", "\n", "\r\n", "EOT", "<<EOT", "&a", "*a",
         "!!python/object:os.system", "- ", ": ", " #", "---", "...", "@@provision:api_endpoint@@",
         "\t", "é", "🚀", "\u202e", "\u2028", "`", "$(id)", ";", "|", ">", "null", "~", "yes",
         "0x1F", "1e3", "[", "]", ",", "\x85", "\u2029", "\ufeff", "\x00", "\x1b[31m"]
hostile = st.lists(st.one_of(st.sampled_from(NASTY),
                             st.text(st.characters(exclude_categories=("Cs",)), max_size=8)),
                   min_size=1, max_size=6).map("".join)

BASE = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())


def _render(value: str, project: str) -> tuple[Any, dict[str, str]]:
    config = copy.deepcopy(BASE)
    config["config"]["LOG_LEVEL"] = value
    config["digitalocean"]["project"] = project
    api = config["apps"][0]
    api["env"]["HTTP_PORT"] = value
    api["command"] = ["/bin/api", value]
    # An HTTP path may hold anything but whitespace breaks and NUL; those are refused earlier.
    api["readiness"]["http"] = "/" + "".join(c for c in value if c not in "\r\n\x00 ")
    config["deploy_policy"]["freeze"][0]["reason"] = value
    # allow_unicode=False: PyYAML would write U+0085 raw, which YAML reads as a line break.
    env = parse(yaml.safe_dump(config, allow_unicode=False).encode(), "hostile.yaml")
    return env, render_environment(env)


def _docs(files: dict[str, str], path: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(files[path]) if d is not None]


BASELINE_ENV, BASELINE = _render("info", "Acme Production")


def _shape(value: Any) -> Any:
    """The structure of a parsed document: keys and types, not the scalar values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


@given(value=hostile, project=hostile.filter(lambda s: s.strip() and len(s) <= 175))
@example(value="a\nb: c\n- d", project='x" } resource "evil" {')
@example(value="${file(\"/etc/passwd\")}", project="%{ if true }x%{ endif }")
@example(value="{{ 7*7 }}", project="EOT\n<<EOT")
def test_hostile_values_round_trip_without_changing_structure(value: str, project: str) -> None:
    _, files = _render(value, project)
    assert sorted(files) == sorted(BASELINE)

    config_map = _docs(files, "manifests/00-shared.yaml")[1]
    assert config_map["data"]["LOG_LEVEL"] == value
    deployment = _docs(files, "manifests/app-api.yaml")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in container["env"]}["HTTP_PORT"] == value
    assert container["command"] == ["/bin/api", value]
    for path in BASELINE:
        if path.endswith(".yaml"):
            assert [_shape(d) for d in _docs(files, path)] == [
                _shape(d) for d in _docs(BASELINE, path)], path

    tfvars = json.loads(files["terraform/terraform.tfvars.json"])
    assert tfvars["project"] == project
    baseline_vars = json.loads(BASELINE["terraform/terraform.tfvars.json"])
    assert _shape(tfvars) == _shape(baseline_vars)
    for path, text in files.items():
        if path.endswith(".tf"):
            assert text == BASELINE[path]


def test_terraform_sources_parse_as_hcl() -> None:
    for path, text in BASELINE.items():
        if path.endswith(".tf"):
            parsed = hcl2.loads(text)
            assert parsed, path
    variables = hcl2.loads(BASELINE["terraform/variables.tf"])["variable"]
    tfvars = json.loads(BASELINE["terraform/terraform.tfvars.json"])
    declared = {name.strip('"') for block in variables for name in block}
    # Passed when Terraform runs, never rendered to disk: the secrets, whether the cluster
    # exists (asked of its API), a rolling replacement's intermediate worker set and
    # whether `provision restore` is rebuilding the control plane.
    assert set(tfvars) == declared - {"bootstrap_secrets", "cluster_initialised",
                                      "worker_instances", "restore"}
