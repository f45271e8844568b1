"""A corpus of malformed environment files: each exits 2 with located messages, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (\d+): (.*)$", re.MULTILINE)


def _validate(path: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    return result.exit_code, result.stdout, result.stderr


def test_corpus_is_large() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_file_reports_located_problems(path: Path) -> None:
    text = path.read_text()
    expected = _EXPECT.findall(text)
    assert expected, f"{path.name} has no '# expect:' line"
    code, stdout, stderr = _validate(path)
    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    for line, rest in expected:
        wanted = f"{path}:{line}: {rest}"
        assert any(wanted in got for got in stderr.splitlines()), (
            f"missing: {wanted}\ngot:\n{stderr}")
    for got in stderr.splitlines():
        assert got.startswith(f"{path}"), got  # every line is located


def _generated_cases(tmp: Path) -> dict[str, tuple[bytes, str]]:
    nested = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]\n" for i in range(9))
    bomb += "name: *j\n"
    return {
        "binary": (bytes(range(256)) * 64, "is not UTF-8 text"),
        "nul-bytes": (b"name: demo\x00\n", "contains NUL bytes"),
        "huge": (b"# " + b"x" * (5 * 1024 * 1024) + b"\n", "bytes"),
        "deep": (nested.encode(), "nested deeper than"),
        "alias-bomb": (bomb.encode(), "aliases expand to too many values"),
        "latin1": ("name: d\xe9mo\n".encode("latin-1"), "is not UTF-8 text"),
        "recursive-alias": (b"name: &a [*a]\n", "an alias refers to a value that contains it"),
        "many-keys": ("".join(f"k{i}: {i}\n" for i in range(60000)).encode(), "unknown key"),
    }


@pytest.mark.parametrize("case", ["binary", "nul-bytes", "huge", "deep", "alias-bomb", "latin1",
                                  "recursive-alias", "many-keys"])
def test_hostile_file_fails_cleanly(case: str, tmp_path: Path) -> None:
    data, fragment = _generated_cases(tmp_path)[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    code, stdout, stderr = _validate(path)
    assert code == 2 and stdout == ""
    assert "Traceback" not in stderr
    assert stderr.startswith(str(path))
    assert fragment in stderr


def test_missing_file_and_directory(tmp_path: Path) -> None:
    code, _, stderr = _validate(tmp_path / "nope.yaml")
    assert code == 2 and "cannot read" in stderr
    code, _, stderr = _validate(tmp_path)
    assert code == 2 and "is a directory" in stderr


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """Through the installed entry point, as a user runs it."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: &a [*a]\nkubernetes: {version: 1.3}\n" + bytes(range(40)))
    result = subprocess.run([sys.executable, "-m", "provisioner", "validate", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(str(path))
