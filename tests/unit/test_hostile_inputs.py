# ruff: noqa: RUF001  (look-alike digits are the point of this table)
"""A table of hostile inputs, each run through the real CLI: a clear error, never a crash.

Every row is something a user can hand provision: a damaged or strange environment file
(binary, NUL, huge, deep, alias bombs, a FIFO, /dev/zero, a directory, a missing or
unreadable path, non-UTF-8, Unicode digits wherever a number or version goes), odd option
values (NaN, infinities), and damaged files in the work folder (infrastructure.json, the
kubeconfig, secrets, rendered files) or an unusable output folder. Each must exit 2 (1 for
a cloud failure) with one line naming the file, key or option, no traceback and never
"internal error".

`python -m tests.unit.test_hostile_inputs` prints the table's figures (tries, clean,
internal errors) for the current code.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.support.rendering import ROOT

STAGING = (ROOT / "examples" / "staging.yaml").read_text()


@dataclass
class Case:
    """One hostile input: how to make it, what the CLI must answer."""

    make: Callable[[Path], list[str]]  # builds files under tmp, returns the argv
    fragment: str  # must appear in the one error line; "{tmp}" is the case's folder
    code: int = 2
    single: bool = True  # exactly one error line (else: every line names the file)
    env: dict[str, str] = field(default_factory=dict)
    read_only: str = ""  # run as a process with this folder read-only ("{work}")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _file(name: str, data: bytes | str, command: str = "validate") -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return [command, str(path)]
    return make


def _staging(old: str, new: str, name: str = "env.yaml") -> Callable[[Path], list[str]]:
    assert old in STAGING, old
    return _file(name, STAGING.replace(old, new, 1))


def _with_policy(policy: str) -> Callable[[Path], list[str]]:
    return _file("env.yaml", STAGING + policy)


def _option(*argv: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        config = tmp / "env.yaml"
        config.write_text(STAGING)
        return [a.replace("{config}", str(config)).replace("{tmp}", str(tmp)) for a in argv]
    return make


def _fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.yaml")
    return ["validate", str(tmp / "pipe.yaml")]


def _socket(tmp: Path) -> list[str]:
    path = tmp / "sock.yaml"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()  # the socket file stays
    return ["validate", str(path)]


def _symlink_loop(tmp: Path) -> list[str]:
    (tmp / "a.yaml").symlink_to(tmp / "b.yaml")
    (tmp / "b.yaml").symlink_to(tmp / "a.yaml")
    return ["validate", str(tmp / "a.yaml")]


def _dangling(tmp: Path) -> list[str]:
    (tmp / "gone.yaml").symlink_to(tmp / "nowhere.yaml")
    return ["validate", str(tmp / "gone.yaml")]


def _unreadable(tmp: Path) -> list[str]:
    # As root the mode does not stop the read; the content is refused then instead.
    path = tmp / "locked.yaml"
    path.write_bytes(b"\x00\x01 locked")
    path.chmod(0)
    return ["validate", str(path)]


def _through_a_file(tmp: Path) -> list[str]:
    (tmp / "plain").write_text("x")
    return ["validate", str(tmp / "plain" / "env.yaml")]


def _nested() -> bytes:
    return ("a: " + "[" * 5000 + "]" * 5000 + "\n").encode()


def _bomb() -> bytes:
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(9):
        prev, cur = chr(97 + i), chr(98 + i)
        text += f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    return (text + "name: *j\n").encode()


# Files in a prepared work folder (plan --offline made it).
def _workdir(change: Callable[[Path], None], *argv: str,
             infrastructure: bool = True) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        config = tmp / "env.yaml"
        config.write_text(STAGING)
        work = tmp / "work"
        result = CliRunner().invoke(cli, ["plan", str(config), "--offline", "--workdir",
                                          str(work)])
        assert result.exit_code == 0, result.stderr
        if infrastructure:
            (work / "infrastructure.json").write_text(json.dumps({"api_endpoint": "192.0.2.7"}))
        change(work)
        return [a.replace("{config}", str(config)).replace("{work}", str(work))
                .replace("{tmp}", str(tmp)) for a in argv]
    return make


def _write(relative: str, data: bytes) -> Callable[[Path], None]:
    def change(work: Path) -> None:
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            path.rmdir()
        path.write_bytes(data)
    return change


def _dir_instead(relative: str) -> Callable[[Path], None]:
    def change(work: Path) -> None:
        (work / relative).unlink()
        (work / relative).mkdir()
    return change


def _replace_with_file(relative: str) -> Callable[[Path], None]:
    def change(work: Path) -> None:
        import shutil

        shutil.rmtree(work / relative)
        (work / relative).write_text("in the way\n")
    return change


def _read_only(work: Path) -> None:
    # A changed environment, so the next plan has files to write into the folder.
    config = work.parent / "env.yaml"
    config.write_text(config.read_text().replace("count: 2", "count: 3", 1))


def _run_read_only(folder: Path, argv: list[str], env: dict[str, str | None]) -> Outcome:
    """The CLI as a process that cannot write ``folder``.

    Root is not stopped by file modes, so as root the folder is bind-mounted read-only in a
    private mount namespace (``unshare -m``, as the failover tests' namespaces need root
    too); otherwise its mode is 0555.
    """
    environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    command = [sys.executable, "-m", "provisioner", *argv]
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("no unshare(1) to make a read-only mount as root")
        command = [unshare, "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
                   str(folder), *command]
    else:
        folder.chmod(0o555)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=environ,
                                timeout=120)
    finally:
        folder.chmod(0o755)
    if result.returncode != 0 and result.stderr.startswith(("unshare:", "mount:")):
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    return Outcome(result.returncode, result.stdout, result.stderr)


def _kubeconfig_target(data: bytes) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        argv = _workdir(lambda w: None, "kubeconfig", "{config}", "--workdir", "{work}",
                        "--merge")(tmp)
        (tmp / "kube").write_bytes(data)
        return argv
    return make


ENV_KUBE = {"KUBECONFIG": "{tmp}/kube"}

VERSION = 'version: "1.36.2"'
APP_IMAGE = "ghcr.io/acme/api:1.4.2"
WINDOW = 'deploy_policy:\n  windows:\n    - {{days: [mon], from: "{a}", to: "{b}"}}\n'

CASES: dict[str, Case] = {
    # --- damaged files ---------------------------------------------------------------
    "binary": Case(_file("e.yaml", bytes(range(256)) * 64), "is not UTF-8 text"),
    "nul-bytes": Case(_file("e.yaml", b"name: demo\x00\n"), "contains NUL bytes"),
    "huge": Case(_file("e.yaml", b"# " + b"x" * (5 * 1024 * 1024)), "bytes"),
    "deep": Case(_file("e.yaml", _nested()), "nested deeper than"),
    "alias-bomb": Case(_file("e.yaml", _bomb()), "aliases expand to too many values"),
    "recursive-alias": Case(_file("e.yaml", b"name: &a [*a]\n"), "an alias refers"),
    "latin1": Case(_file("e.yaml", "name: d\xe9mo\n".encode("latin-1")), "is not UTF-8"),
    "utf16": Case(_file("e.yaml", "name: demo\n".encode("utf-16")), "is not UTF-8"),
    "surrogate": Case(_file("e.yaml", b"name: \xed\xa0\x80\n"), "is not UTF-8"),
    "empty": Case(_file("e.yaml", b""), "file is empty"),
    "comments-only": Case(_file("e.yaml", b"# nothing\n"), "file is empty"),
    "two-documents": Case(_file("e.yaml", b"name: a\n---\nname: b\n"), "more than one"),
    "top-list": Case(_file("e.yaml", b"- a\n- b\n"), "expected a mapping"),
    "top-scalar": Case(_file("e.yaml", b"just text\n"), "expected a mapping"),
    "tabs": Case(_file("e.yaml", b"name: a\n\tkubernetes: {}\n"), "invalid YAML"),
    "unclosed": Case(_file("e.yaml", b"name: [a, b\n"), "invalid YAML"),
    "control-char": Case(_file("e.yaml", b"name: a\x07b\n"), "invalid YAML"),
    "python-tag": Case(_staging("name: staging", "name: !!python/object:os.system x"),
                       "cannot read value"),
    "binary-tag": Case(_staging("name: staging", "name: !!binary aGVsbG8="), "name"),
    "timestamp-name": Case(_staging("name: staging", "name: 2026-01-01T10:00:00"), "name:"),
    "list-key": Case(_staging("name: staging", "name: staging\n? [a]\n: b"),
                     "a key must be plain text"),
    "merge-scalar": Case(_staging("name: staging", "name: staging\n<<: 1"),
                         "can only merge mappings"),
    "duplicate-key": Case(_staging("name: staging", "name: staging\nname: again"),
                          "duplicate key"),
    "long-name": Case(_staging("name: staging", "name: " + "a" * 1_000_000), "name:"),
    "line-separator": Case(_staging("name: staging", 'name: "sta\u2028ging"'), "name:"),
    "many-keys": Case(_file("e.yaml", "".join(f"k{i}: {i}\n" for i in range(60000))),
                      "unknown key", single=False),
    # --- paths that are not files ----------------------------------------------------
    "fifo": Case(_fifo, "is a FIFO"),
    "dev-zero": Case(lambda tmp: ["validate", "/dev/zero"], "/dev/zero: is a character device"),
    "dev-null": Case(lambda tmp: ["validate", "/dev/null"], "/dev/null: is a character device"),
    "socket": Case(_socket, "is a socket"),
    "directory": Case(lambda tmp: ["validate", str(tmp)], "is a directory"),
    "missing": Case(lambda tmp: ["validate", str(tmp / "nope.yaml")], "No such file"),
    "dash": Case(lambda tmp: ["validate", "-"], "-: cannot read"),
    "dangling-link": Case(_dangling, "No such file"),
    "symlink-loop": Case(_symlink_loop, "Too many levels of symbolic links"),
    "through-a-file": Case(_through_a_file, "Not a directory"),
    "name-too-long": Case(lambda tmp: ["validate", str(tmp / ("x" * 300))], "File name too long"),
    "unreadable": Case(_unreadable, "locked.yaml"),
    # --- Unicode digits wherever a number or version goes ----------------------------
    "version-arabic": Case(_staging(VERSION, 'version: "1.٣6.2"'), "kubernetes.version"),
    "version-fullwidth": Case(_staging(VERSION, 'version: "1.36.２"'), "kubernetes.version"),
    "version-v-prefix": Case(_staging(VERSION, 'version: "v١.36.2"'), "kubernetes.version"),
    "version-newline": Case(_staging(VERSION, 'version: "1.36.2\\n"'), "kubernetes.version"),
    "version-superscript": Case(_staging(VERSION, 'version: "1.36.²"'), "kubernetes.version"),
    "image-tag-digits": Case(_staging(APP_IMAGE, "ghcr.io/acme/api:١.4.2"), "apps[0].image"),
    "image-tag-letters": Case(_staging(APP_IMAGE, "ghcr.io/acme/api:vé1"), "apps[0].image"),
    "window-from": Case(_with_policy(WINDOW.format(a="0٩:00", b="16:00")),
                        "deploy_policy.windows[0].from"),
    "window-to": Case(_with_policy(WINDOW.format(a="09:00", b="１6:00")),
                      "deploy_policy.windows[0].to"),
    "freeze-date": Case(_with_policy('deploy_policy:\n  freeze: ["２026-12-24"]\n'),
                        "deploy_policy.freeze[0]"),
    "max-surge": Case(_staging("replicas: 2", 'replicas: 2\n    strategy: {max_surge: "٣"}'),
                      "max_surge"),
    "max-unavailable": Case(_staging("replicas: 2",
                                     'replicas: 2\n    strategy: {max_unavailable: "٢٥%"}'),
                            "max_unavailable"),
    "ssh-key-superscript": Case(_staging('"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"',
                                         '"²³"'), "digitalocean.ssh_keys[0]"),
    "ssh-key-arabic": Case(_staging('"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"',
                                    '"١٢٣"'), "digitalocean.ssh_keys[0]"),
    "droplet-image": Case(_staging("tags: [team-platform]", 'image: "١٢٣"'),
                          "digitalocean.image"),
    "port": Case(_staging("port: 8080", "port: ８０８０"), "apps[0].ports[0].port"),
    "service-port": Case(_staging("service_port: 80", "service_port: ８0"), "service_port"),
    "node-port": Case(_staging("node_port: 30080", "node_port: ３0080"), "node_port"),
    "replicas": Case(_staging("replicas: 2", "replicas: ３"), "apps[0].replicas"),
    "control-plane-count": Case(_staging("count: 1 ", "count: ١ "), "control_plane.count"),
    "worker-count": Case(_staging("count: 2", "count: ２"), "worker_pools[0].count"),
    "vpc-cidr": Case(_staging("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 1٠.20.0.0/16"),
                     "digitalocean.vpc_cidr"),
    "api-cidr": Case(_staging("api_cidrs: [203.0.113.0/24]", "api_cidrs: [２03.0.113.0/24]"),
                     "access.api_cidrs[0]"),
    "cpu-quantity": Case(_staging("cpu: 100m", "cpu: ١00m"), "requests.cpu"),
    "memory-quantity": Case(_staging("memory: 128Mi", "memory: １28Mi"), "requests.memory"),
    "initial-delay": Case(_staging("initial_delay: 10", "initial_delay: １0"), "initial_delay"),
    "region": Case(_staging("region: fra1", "region: fra١"), "digitalocean.region"),
    "size": Case(_staging("size: s-2vcpu-4gb\n  endpoint", "size: s-２vcpu-4gb\n  endpoint"),
                 "control_plane.size"),
    # --- values the kubelet or the platform would refuse later -----------------------
    "node-restriction-label": Case(_staging("tier: general",
                                            "node-restriction.kubernetes.io/team: a"),
                                   "cannot be set by the kubelet"),
    "node-restriction-sub": Case(_staging("tier: general",
                                          "x.node-restriction.kubernetes.io/team: a"),
                                 "cannot be set by the kubelet"),
    "kubernetes-io-label": Case(_staging("tier: general", "kubernetes.io/role: a"),
                                "reserved for Kubernetes"),
    "k8s-io-label": Case(_staging("tier: general", "team.k8s.io/x: a"),
                         "reserved for Kubernetes"),
    "timezone-long": Case(_with_policy("deploy_policy:\n  timezone: " + "A" * 300 + "\n"),
                          "deploy_policy.timezone"),
    "timezone-path": Case(_with_policy("deploy_policy:\n  timezone: ../../etc/passwd\n"),
                          "deploy_policy.timezone"),
    # --- odd command-line options ----------------------------------------------------
    "availability-nan": Case(_option("check", "{config}", "--availability", "nan"),
                             "'--availability'"),
    "availability-inf": Case(_option("check", "{config}", "--availability", "inf"),
                             "'--availability'"),
    "availability-neg-inf": Case(_option("check", "{config}", "--availability", "-inf"),
                                 "'--availability'"),
    "availability-overflow": Case(_option("check", "{config}", "--availability", "1e309"),
                                  "'--availability'"),
    "availability-text": Case(_option("check", "{config}", "--availability", "0.5e"),
                              "'--availability'"),
    "availability-empty": Case(_option("check", "{config}", "--availability", ""),
                               "'--availability'"),
    "deploy-timeout-nan": Case(_option("deploy", "{config}", "--timeout", "nan"),
                               "'--timeout'"),
    "deploy-timeout-zero": Case(_option("deploy", "{config}", "--timeout", "0"), "'--timeout'"),
    "unknown-option": Case(_option("validate", "{config}", "--frobnicate"), "--frobnicate"),
    "output-xml": Case(_option("plan", "{config}", "--offline", "--output", "xml"),
                       "'--output'"),
    "render-no-out": Case(_option("render", "{config}"), "'--out'"),
    "render-out-is-file": Case(_option("render", "{config}", "--out", "{config}"), "--out"),
    "render-out-under-file": Case(_option("render", "{config}", "--out", "{config}/sub"),
                                  "cannot create {tmp}/env.yaml/sub"),
    "workdir-under-file": Case(_option("plan", "{config}", "--offline", "--workdir",
                                       "{config}/w"), "{tmp}/env.yaml/w"),
    "plan-out-is-dir": Case(_option("plan", "{config}", "--out", "{tmp}"), "'--out'"),
    "until-bogus": Case(_option("up", "{config}", "--until", "everything"), "'--until'"),
    "context-name-bad": Case(_workdir(lambda w: None, "kubeconfig", "{config}", "--workdir",
                                      "{work}", "--context-name", "Bad Name!"),
                             "--context-name 'Bad Name!'"),
    "end-point-not-url": Case(_option("plan", "{config}", "--workdir", "{tmp}/w"),
                              "DIGITALOCEAN_END_POINT 'not a url'",
                              env={"DIGITALOCEAN_TOKEN": "t", "DIGITALOCEAN_END_POINT":
                                   "not a url", "PROVISION_FAILOVER_TOKEN": "f"}),
    "end-point-closed-port": Case(_option("plan", "{config}", "--workdir", "{tmp}/w"),
                                  "cannot reach the DigitalOcean API", code=1,
                                  env={"DIGITALOCEAN_TOKEN": "t", "DIGITALOCEAN_END_POINT":
                                       "http://127.0.0.1:9/v2/",
                                       "PROVISION_FAILOVER_TOKEN": "f"}),
    "init-workers-nan": Case(_option("init", "{tmp}/new.yaml", "-y", "--ssh-key", "123",
                                     "--api-cidr", "0.0.0.0/0", "--workers", "nan"),
                             "workers"),
    "init-count-unicode": Case(_option("init", "{tmp}/new.yaml", "-y", "--ssh-key", "123",
                                       "--api-cidr", "0.0.0.0/0", "--control-plane-count",
                                       "３"), "control"),
    "init-version-unicode": Case(_option("init", "{tmp}/new.yaml", "-y", "--ssh-key", "123",
                                         "--api-cidr", "0.0.0.0/0", "--kubernetes-version",
                                         "1.٣6.2"), "version"),
    "init-ssh-key-garbage": Case(_option("init", "{tmp}/new.yaml", "-y", "--ssh-key", "²",
                                         "--api-cidr", "0.0.0.0/0"), "ssh"),
    "init-app-garbage": Case(_option("init", "{tmp}/new.yaml", "-y", "--ssh-key", "123",
                                     "--api-cidr", "0.0.0.0/0", "--app", "=:"), "app"),
    # --- damaged files in the work folder --------------------------------------------
    "infrastructure-not-json": Case(_workdir(_write("infrastructure.json", b"{not json"),
                                             "kubeconfig", "{config}", "--workdir", "{work}"),
                                    "infrastructure.json"),
    "infrastructure-binary": Case(_workdir(_write("infrastructure.json", b"\xff\xfe\x00"),
                                           "kubeconfig", "{config}", "--workdir", "{work}"),
                                  "infrastructure.json"),
    "infrastructure-list": Case(_workdir(_write("infrastructure.json", b"[1, 2]"),
                                         "kubeconfig", "{config}", "--workdir", "{work}"),
                                "infrastructure.json"),
    "infrastructure-endpoint-number": Case(
        _workdir(_write("infrastructure.json", b'{"api_endpoint": 7}'), "kubeconfig",
                 "{config}", "--workdir", "{work}"), "infrastructure.json"),
    "infrastructure-missing": Case(_workdir(lambda w: None, "kubeconfig", "{config}",
                                            "--workdir", "{work}", infrastructure=False),
                                   "no infrastructure recorded"),
    "kubeconfig-target-binary": Case(_kubeconfig_target(b"\xff\xfe\x00"),
                                     "{tmp}/kube is not a valid kubeconfig", env=ENV_KUBE),
    "kubeconfig-target-list": Case(_kubeconfig_target(b"- a\n"),
                                   "{tmp}/kube is not a valid kubeconfig", env=ENV_KUBE),
    "kubeconfig-target-entries": Case(_kubeconfig_target(b"clusters: [1]\n"),
                                      "clusters is not a list of named entries", env=ENV_KUBE),
    "kubeconfig-target-dir": Case(_workdir(lambda w: None, "kubeconfig", "{config}",
                                           "--workdir", "{work}", "--merge"),
                                  "{work} is not a regular file",
                                  env={"KUBECONFIG": "{work}"}),
    "deploy-kubeconfig-binary": Case(_workdir(_write("kubeconfig", b"\xff\xfe\x00"), "deploy",
                                              "{config}", "--workdir", "{work}",
                                              "--override-window", "--reason", "t"),
                                     "cannot use kubeconfig"),
    "deploy-kubeconfig-list": Case(_workdir(_write("kubeconfig", b"- a\n"), "deploy",
                                            "{config}", "--workdir", "{work}",
                                            "--override-window", "--reason", "t"),
                                   "cannot use kubeconfig"),
    "deploy-kubeconfig-context": Case(_workdir(lambda w: None, "deploy", "{config}",
                                               "--kubeconfig", "{tmp}/k", "--context", "nope",
                                               "--override-window", "--reason", "t"),
                                      "--kubeconfig {tmp}/k: the file does not exist"),
    "secrets-tokens-garbage": Case(_workdir(_write("secrets/bootstrap.json", b"\xff{"), "plan",
                                            "{config}", "--offline", "--workdir", "{work}"),
                                   "secrets"),
    "secrets-ca-garbage": Case(_workdir(_write("secrets/ca.key", b"not a key"), "kubeconfig",
                                        "{config}", "--workdir", "{work}"),
                               "secrets/ca.key"),
    "rendered-file-is-dir": Case(_workdir(_dir_instead("terraform/versions.tf"), "plan",
                                          "{config}", "--offline", "--workdir", "{work}"),
                                 "{work}/terraform/versions.tf is not a regular file"),
    "rendered-folder-is-file": Case(_workdir(_replace_with_file("terraform"), "plan",
                                             "{config}", "--offline", "--workdir", "{work}"),
                                    "{work}/terraform"),
    "read-only-workdir": Case(_workdir(_read_only, "plan", "{config}", "--offline",
                                       "--workdir", "{work}"), "{work}", read_only="{work}"),
    "secrets-is-file": Case(_workdir(_replace_with_file("secrets"), "plan", "{config}",
                                     "--offline", "--workdir", "{work}"), "{work}/secrets"),
}


def run_case(name: str, tmp: Path) -> Outcome:
    """Build the case under ``tmp`` and run it through the CLI."""
    case = CASES[name]
    argv = case.make(tmp)
    env: dict[str, str | None] = {
        k: v.replace("{tmp}", str(tmp)).replace("{work}", str(tmp / "work"))
        for k, v in case.env.items()}
    for variable in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN",
                     "DIGITALOCEAN_END_POINT", "KUBECONFIG", "PROVISION_FAILOVER_TOKEN"):
        env.setdefault(variable, None)  # None: unset while the case runs
    if case.read_only:
        return _run_read_only(Path(case.read_only.replace("{work}", str(tmp / "work"))),
                              argv, env)
    result = CliRunner(env=env).invoke(cli, argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return Outcome(-1, result.stdout, f"{type(result.exception).__name__} escaped")
    return Outcome(result.exit_code, result.stdout, result.stderr)


def error_lines(stderr: str) -> list[str]:
    """The error lines: Click's usage errors add 'Usage:' and 'Try ...' lines around one."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage: "):
        return [line for line in lines if line.startswith("Error: ")]
    return lines


def judge(name: str, tmp: Path, outcome: Outcome) -> list[str]:
    """Every way the outcome falls short of the rule; empty when clean."""
    case = CASES[name]
    wrong = []
    if outcome.code != case.code:
        wrong.append(f"exit {outcome.code}, expected {case.code}")
    if "internal error" in outcome.stderr or "Traceback" in outcome.stderr or outcome.code < 0:
        wrong.append("internal error or traceback")
    lines = error_lines(outcome.stderr)
    fragment = case.fragment.replace("{tmp}", str(tmp)).replace("{work}", str(tmp / "work"))
    if case.single and len(lines) != 1:
        wrong.append(f"{len(lines)} error lines")
    if not any(fragment in line for line in lines):
        wrong.append(f"no line names {fragment!r}")
    return wrong


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("provisioner.cloud.preflight.time.sleep", lambda seconds: None)


def test_the_table_is_large() -> None:
    assert len(CASES) >= 90


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_fails_cleanly(name: str, tmp_path: Path) -> None:
    outcome = run_case(name, tmp_path)
    wrong = judge(name, tmp_path, outcome)
    assert not wrong, f"{name}: {wrong}\nstdout: {outcome.stdout[:300]}\nstderr: " \
                      f"{outcome.stderr[:600]}"


def figures() -> tuple[int, int, int, list[str]]:
    """Run the whole table: tries, clean, internal errors, and the names not clean."""
    import tempfile

    clean = internal = tries = 0
    failing = []
    with tempfile.TemporaryDirectory() as base, pytest.MonkeyPatch.context() as patch:
        patch.setattr("provisioner.cloud.preflight.time.sleep", lambda seconds: None)
        for name in sorted(CASES):
            tries += 1
            tmp = Path(base) / name
            tmp.mkdir()
            outcome = run_case(name, tmp)
            wrong = judge(name, tmp, outcome)
            clean += not wrong
            internal += "internal error or traceback" in wrong
            if wrong:
                failing.append(f"{name}: {'; '.join(wrong)}")
    return tries, clean, internal, failing


if __name__ == "__main__":
    tries, clean, internal, failing = figures()
    print(f"tries {tries}, clean {clean}, internal errors {internal}")
    print("\n".join(failing))
    sys.exit(0 if clean == tries else 1)
