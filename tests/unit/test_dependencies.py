"""The install that is tested is the install users get.

pyproject.toml says which releases provision works with; constraints.txt pins the exact
set the suite last passed with, and CI and the README's test command install through it
(issue 13: with open ranges a fresh install took PyYAML 6.0.4, whose libyaml 0.2.6 reports
deep nesting with another message, and the suite failed for a new user while CI passed).
"""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.rendering import ROOT


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["test"]
    return [Requirement(text) for text in listed]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[canonicalize_name(name)] = version
    return pins


# Left open on purpose, with why.
OPEN = {"tzdata": "a release changes only time zone data, and new rules must reach users"}


def test_every_range_has_an_upper_bound() -> None:
    """A new major release never reaches users (or CI) untested."""
    unbounded = [str(r) for r in _requirements() if r.name not in OPEN
                 and not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert unbounded == []


def test_every_dependency_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {requirement}")


def test_the_suite_runs_on_the_pinned_set() -> None:
    """What is installed is what constraints.txt says (install with -c constraints.txt, as
    the README's test command does)."""
    pins = _pins()
    installed = {name: importlib.metadata.version(name) for name in pins
                 if _installed(name)}
    wrong = {name: f"{installed[name]} installed, {pins[name]} pinned"
             for name in installed if installed[name] != pins[name]}
    assert wrong == {}
    missing = [canonicalize_name(r.name) for r in _requirements()
               if not _installed(canonicalize_name(r.name))]
    assert missing == []


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_what_the_pinned_packages_require_is_pinned_too() -> None:
    """constraints.txt is closed under requirements: a package a pinned one needs (e.g.
    setuptools, which grpcio-tools requires and `pip freeze` leaves out without --all) is
    pinned too, so a fresh install takes no untested release of it."""
    pins = _pins()
    unpinned = set()
    for name in pins:
        if not _installed(name):
            continue
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(requirement.name) not in pins:
                unpinned.add(f"{canonicalize_name(requirement.name)} (required by {name})")
    assert sorted(unpinned) == []
