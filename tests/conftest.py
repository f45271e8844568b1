"""Test-wide settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support import clock

pytest_plugins = ["tests.support.do_account"]  # the `fake` DigitalOcean account

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs at one instant unless it pins another (tests/support/clock.py)."""
    clock.pin(monkeypatch, clock.pinned())
    yield


@pytest.fixture
def inside_production_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that change the production example's infrastructure and are not about its
    deploy windows, which hold such changes back (README: One freeze calendar): they run
    while the window is open. tests/integration/test_change_window.py is about them."""
    clock.pin(monkeypatch, clock.EARLY_IN_PRODUCTION_WINDOW)


@pytest.fixture(autouse=True)
def no_package_index_on_the_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online preflight asks the Kubernetes package index whether the release exists; a test
    that does not stand one in (tests/support/k8s_packages.py, which the simulation starts)
    gets a closed loopback port, so it warns instead of reaching the internet."""
    from provisioner.cloud.releases import HOST_ENV

    if not os.environ.get(HOST_ENV):
        monkeypatch.setenv(HOST_ENV, "http://127.0.0.1:9")
