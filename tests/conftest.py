"""Shared fixtures. Keep this small: fixtures used by more than one test module only."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from dockd_sim.umockdev_bed import UMockdevDock, umockdev_available


@pytest.fixture(scope="session")
def umockdev_dock() -> Iterator[UMockdevDock]:
    """The process's one umockdev dock (skips with the reason where umockdev cannot run).

    One per session: libusb binds to the testbed when it is first initialised, so a second
    testbed would be invisible to it. Tests plug cameras into their own slots and unplug them.
    """
    ok, reason = umockdev_available()
    if not ok:
        if shutil.which("umockdev-wrapper"):
            reason += "; test_umockdev_e2e.py::test_umockdev_tests_pass_under_the_wrapper runs it"
        pytest.skip(reason)
    dock = UMockdevDock()
    yield dock
    dock.close()
