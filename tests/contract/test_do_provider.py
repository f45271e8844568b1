"""Contract tests of the Terraform oracle: the fake DigitalOcean provider under real Terraform.

They prove the oracle bites (bad modules fail `terraform validate` with a diagnostic that
names the problem), that it serves the real provider's schema verbatim, and that plan /
apply / destroy work offline with realistic computed values.
"""

from __future__ import annotations

import ipaddress
import json
import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.doprovider.cloud import Cloud
from tests.oracles.terraform import (
    PROVIDER_SOURCE,
    copy_module,
    format_diagnostics,
    prepare_plugin_env,
    state_resources,
    terraform,
    terraform_apply,
    terraform_destroy,
    terraform_init,
    terraform_plan,
    terraform_show_state,
    terraform_validate,
)

pytestmark = pytest.mark.oracle

DATA = Path(__file__).resolve().parents[1] / "data"
SCHEMA_DUMP = DATA / "digitalocean-provider-schema-2.34.1.json"

HEADER = """\
terraform {
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.34"
    }
  }
}

variable "do_token" {
  type      = string
  sensitive = true
  default   = ""
}

provider "digitalocean" {
  token = var.do_token
}
"""

VPC = """\
resource "digitalocean_vpc" "main" {
  name     = "t-net"
  region   = "fra1"
  ip_range = "10.20.0.0/20"
}
"""

DROPLETS = """\
resource "digitalocean_droplet" "node" {
  count    = 2
  name     = "t-node-${count.index + 1}"
  image    = "ubuntu-22-04-x64"
  size     = "s-2vcpu-4gb"
  region   = "fra1"
  vpc_uuid = digitalocean_vpc.main.id
  tags     = ["k8s", "role:node"]
}
"""

FIREWALL = """\
resource "digitalocean_firewall" "nodes" {
  name        = "t-nodes"
  droplet_ids = digitalocean_droplet.node[*].id

  inbound_rule {
    protocol         = "tcp"
    port_range       = "22"
    source_addresses = ["0.0.0.0/0"]
  }
}
"""

RESERVED_IP = """\
resource "digitalocean_reserved_ip" "api" {
  region = "fra1"
}

resource "digitalocean_reserved_ip_assignment" "api" {
  ip_address = digitalocean_reserved_ip.api.ip_address
  droplet_id = digitalocean_droplet.node[0].id
}
"""

VALID_MODULE = HEADER + VPC + DROPLETS + FIREWALL


def _write_module(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One provider mirror + CLI config for all validate tests of this module."""
    return prepare_plugin_env(tmp_path_factory.mktemp("tf-env"))


def _all_text(diagnostics: list[dict[str, Any]]) -> str:
    return "\n".join(f"{d.get('summary', '')} {d.get('detail', '')}" for d in diagnostics)


# ------------------------------------------------------------------------ validate


def test_valid_module_validates(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    module = _write_module(tmp_path / "ok", VALID_MODULE + RESERVED_IP)
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert ok, format_diagnostics(diagnostics)
    assert not [d for d in diagnostics if d["severity"] == "error"]
    # The module directory itself is left untouched.
    assert sorted(p.name for p in module.iterdir()) == ["main.tf"]


BROKEN = {
    "misspelt attribute": (
        VALID_MODULE.replace('size     = "s-2vcpu-4gb"', 'sizee    = "s-2vcpu-4gb"'),
        [r"Unsupported argument", r'"sizee"'],
    ),
    "missing required attribute": (
        VALID_MODULE.replace('image    = "ubuntu-22-04-x64"\n', ""),
        [r"Missing required argument", r'"image" is required'],
    ),
    "wrong type": (
        VALID_MODULE.replace('tags     = ["k8s", "role:node"]', 'tags     = { k8s = "yes" }'),
        [r"Incorrect attribute value type", r'"tags"', r"set of string"],
    ),
    "unknown resource type": (
        VALID_MODULE + 'resource "digitalocean_dropletz" "x" {\n  name = "x"\n}\n',
        [r"Invalid resource type", r"digitalocean_dropletz"],
    ),
    "unknown nested block": (
        VALID_MODULE.replace("inbound_rule {", "inbound_rules {"),
        [r"Unsupported block type", r'"inbound_rules"'],
    ),
    "provider-side validation (firewall protocol)": (
        VALID_MODULE.replace('protocol         = "tcp"', 'protocol         = "tcpp"'),
        [r"expected protocol to be one of", r"tcpp"],
    ),
    "provider-side validation (tag name)": (
        VALID_MODULE.replace('"role:node"', '"role=node"'),
        [r"tags may contain"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_module_fails_validate(
    case: str, tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    text, expected = BROKEN[case]
    module = _write_module(tmp_path / "bad", text)
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert not ok, f"{case}: validate passed"
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert errors, format_diagnostics(diagnostics)
    text_of_errors = _all_text(errors)
    for pattern in expected:
        assert re.search(pattern, text_of_errors), f"{pattern!r} not in:\n{text_of_errors}"


def test_served_schema_is_the_real_dump(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """`terraform providers schema -json` through the fake reproduces the dump exactly."""
    work = _write_module(tmp_path / "schema", HEADER)
    terraform_init(work, plugin_env, "-backend=false").check()
    result = terraform(work, plugin_env, "providers", "schema", "-json").check()
    served = json.loads(result.stdout)["provider_schemas"][PROVIDER_SOURCE]
    dump = json.loads(SCHEMA_DUMP.read_text(encoding="utf-8"))["provider_schemas"][PROVIDER_SOURCE]
    assert served == dump


def test_init_writes_lock_file_for_2_34_1(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    work = _write_module(tmp_path / "lock", HEADER)
    terraform_init(work, plugin_env, "-backend=false").check()
    lock = (work / ".terraform.lock.hcl").read_text(encoding="utf-8")
    assert f'provider "{PROVIDER_SOURCE}"' in lock
    assert 'version     = "2.34.1"' in lock


# ------------------------------------------------------------------- apply cycle


@pytest.fixture
def applied(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A module (VPC + 2 droplets + reserved IP) applied against a fresh account."""
    env = prepare_plugin_env(tmp_path / "env", token="sim-token")
    work = copy_module(_write_module(tmp_path / "src", VALID_MODULE + RESERVED_IP), tmp_path / "w")
    terraform_init(work, env).check()
    terraform_apply(work, env).check()
    yield work, env


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def test_apply_fills_computed_attributes(applied: tuple[Path, dict[str, str]]) -> None:
    work, env = applied
    resources = state_resources(terraform_show_state(work, env))

    vpc = resources["digitalocean_vpc.main"]
    assert _is_uuid(vpc["id"])
    assert vpc["urn"] == f"do:vpc:{vpc['id']}"
    network = ipaddress.ip_network(vpc["ip_range"])

    droplet_ids = set()
    for i in (0, 1):
        d = resources[f"digitalocean_droplet.node[{i}]"]
        assert d["id"].isdigit()
        droplet_ids.add(d["id"])
        assert d["urn"] == f"do:droplet:{d['id']}"
        assert d["status"] == "active"
        assert d["vpc_uuid"] == vpc["id"]
        assert ipaddress.ip_address(d["ipv4_address"]).is_global
        assert ipaddress.ip_address(d["ipv4_address_private"]) in network
        assert (d["vcpus"], d["memory"], d["disk"]) == (2, 4096, 80)
        assert d["created_at"].endswith("Z")
    assert len(droplet_ids) == 2

    fw = resources["digitalocean_firewall.nodes"]
    assert _is_uuid(fw["id"])
    assert {str(i) for i in fw["droplet_ids"]} == droplet_ids

    rip = resources["digitalocean_reserved_ip.api"]
    assert ipaddress.ip_address(rip["ip_address"]).is_global
    assert rip["urn"] == f"do:reservedip:{rip['ip_address']}"
    assignment = resources["digitalocean_reserved_ip_assignment.api"]
    assert str(assignment["droplet_id"]) == resources["digitalocean_droplet.node[0]"]["id"]

    # The simulated account agrees with the Terraform state.
    account = Cloud(Path(env["DO_SIM_STATE"])).snapshot()
    assert set(account["resources"]["digitalocean_droplet"]) == droplet_ids
    ip_record = account["resources"]["digitalocean_reserved_ip"][rip["ip_address"]]
    assert str(ip_record["droplet_id"]) == resources["digitalocean_droplet.node[0]"]["id"]


def test_replan_is_empty_then_destroy_empties_everything(
    applied: tuple[Path, dict[str, str]],
) -> None:
    work, env = applied
    plan = terraform_plan(work, env)
    assert plan.returncode == 0, plan.stdout + plan.stderr  # 2 would mean "changes"

    terraform_destroy(work, env).check()
    assert state_resources(terraform_show_state(work, env)) == {}
    account = Cloud(Path(env["DO_SIM_STATE"])).snapshot()["resources"]
    for table in ("digitalocean_droplet", "digitalocean_firewall", "digitalocean_reserved_ip"):
        assert account.get(table, {}) == {}, table
    assert [v for v in account["digitalocean_vpc"].values() if not v.get("default")] == []


def test_injected_failure_names_the_resource(tmp_path: Path) -> None:
    env = prepare_plugin_env(
        tmp_path / "env", token="sim-token", extra={"DO_SIM_FAIL": "digitalocean_droplet:t-node-2"}
    )
    work = copy_module(_write_module(tmp_path / "src", HEADER + VPC + DROPLETS), tmp_path / "w")
    terraform_init(work, env).check()
    result = terraform(work, env, "apply", "-auto-approve", "-input=false", "-json")
    assert result.returncode == 1
    errors = [d for d in result.diagnostics() if d["severity"] == "error"]
    assert len(errors) == 1, format_diagnostics(errors)
    assert "Error creating droplet" in errors[0]["summary"]
    assert '"t-node-2"' in errors[0]["summary"]
    assert errors[0]["address"] == "digitalocean_droplet.node[1]"
    # Everything else was created; the failed droplet is not in the state.
    created = state_resources(terraform_show_state(work, env))
    assert sorted(created) == ["digitalocean_droplet.node[0]", "digitalocean_vpc.main"]


def test_api_calls_need_a_token(tmp_path: Path) -> None:
    env = prepare_plugin_env(tmp_path / "env")  # no token anywhere
    work = copy_module(_write_module(tmp_path / "src", HEADER + VPC), tmp_path / "w")
    terraform_init(work, env).check()
    result = terraform(work, env, "apply", "-auto-approve", "-input=false", "-json")
    assert result.returncode == 1
    assert re.search(r"401 .*Unable to authenticate you", _all_text(result.diagnostics()))


def test_project_by_name_and_project_resources(tmp_path: Path) -> None:
    env = prepare_plugin_env(tmp_path / "env", token="sim-token", projects=["Acme Production"])
    module = (
        HEADER
        + VPC
        + textwrap.dedent(
            """\
        data "digitalocean_project" "this" {
          name = "Acme Production"
        }

        resource "digitalocean_project_resources" "this" {
          project   = data.digitalocean_project.this.id
          resources = [digitalocean_vpc.main.urn]
        }
        """
        )
    )
    work = copy_module(_write_module(tmp_path / "src", module), tmp_path / "w")
    terraform_init(work, env).check()
    terraform_apply(work, env).check()
    resources = state_resources(terraform_show_state(work, env))
    vpc_urn = resources["digitalocean_vpc.main"]["urn"]
    project_id = resources["digitalocean_project_resources.this"]["project"]
    projects = Cloud(Path(env["DO_SIM_STATE"])).snapshot()["resources"]["digitalocean_project"]
    assert projects[project_id]["name"] == "Acme Production"
    assert projects[project_id]["resources"] == [vpc_urn]
    assert terraform_plan(work, env).returncode == 0


USER_DATA_DROPLET = """\
variable "boot" {
  type      = string
  sensitive = true
}

resource "digitalocean_droplet" "booted" {
  name      = "t-booted"
  image     = "ubuntu-22-04-x64"
  size      = "s-2vcpu-4gb"
  region    = "fra1"
  user_data = var.boot
}
"""


def test_the_account_keeps_the_whole_user_data(tmp_path: Path) -> None:
    """The state holds the user_data's SHA-1 (the provider's HashStringStateFunc), but the
    create request carries the text (terraform-provider-digitalocean
    digitalocean/droplet/resource_droplet.go: `opts.UserData = d.Get("user_data")`), which
    DigitalOcean serves to the droplet at /metadata/v1/user-data
    (docs.digitalocean.com/reference/api/metadata/) until it is deleted."""
    import hashlib

    from tests.fakes.doprovider.resources.compute import user_data

    text = "#cloud-config\nwrite_files: []\n# token abcdef.0123456789abcdef\n"
    env = {**prepare_plugin_env(tmp_path / "env", token="sim-token"), "TF_VAR_boot": text}
    work = copy_module(_write_module(tmp_path / "src", HEADER + USER_DATA_DROPLET),
                       tmp_path / "w")
    terraform_init(work, env).check()
    terraform_apply(work, env).check()
    droplet = state_resources(terraform_show_state(work, env))["digitalocean_droplet.booted"]
    assert droplet["user_data"] == hashlib.sha1(text.encode()).hexdigest()
    account = Cloud(Path(env["DO_SIM_STATE"])).snapshot()
    assert user_data(account, droplet["id"]) == text
    assert "user_data" not in account["resources"]["digitalocean_droplet"][droplet["id"]] \
        or account["resources"]["digitalocean_droplet"][droplet["id"]]["user_data"] != text
    terraform_destroy(work, env).check()
    assert user_data(Cloud(Path(env["DO_SIM_STATE"])).snapshot(), droplet["id"]) is None
