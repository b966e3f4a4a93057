"""The real `dockd run` process on its production path — no `--simulate`: pyudev coldplug and
monitor, packaged match data, pyusb on Debian's libusb — against a NetCo camera that exists
only in a umockdev testbed owned by this test process. The daemon is a child process: it
inherits the testbed through the preload library's environment, and its usbdevfs ioctls are
answered here by the simulated firmware.

Runs under umockdev-wrapper (the plain suite launches it through
test_umockdev_e2e.py::test_umockdev_tests_pass_under_the_wrapper)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dockd_netco_sim import simulate as netco_simulate
from dockd_sim.content import GeneratedContent
from dockd_sim.spec import CameraSpec, RecordingSpec
from dockd_sim.state import CameraState

from dockd.catalog import Catalog
from dockd.crypto.keys import generate_identity

DOCKD = Path(sys.executable).with_name("dockd")
SIZES = {b"20261125_101500_0001.MP4": 3_000_001, b"20261125_113000_0002.MP4": 0}


def _content_sha(size: int, seed: int) -> str:
    buf = bytearray(size)
    GeneratedContent(size, seed).read_into(0, memoryview(buf))
    return hashlib.sha256(buf).hexdigest()


@pytest.mark.umockdev
def test_daemon_ingests_a_hotplugged_camera_through_udev_and_libusb(umockdev_dock, tmp_path):
    recordings = tuple(
        RecordingSpec(name=name, started=datetime(2026, 11, 25, 10, 15 + i, tzinfo=UTC),
                      duration_s=30.0, size=size, seed=i)
        for i, (name, size) in enumerate(SIZES.items()))
    spec = CameraSpec(serial="NC-UMOCK-7", slot=5, recordings=recordings)
    state = CameraState.load(spec, tmp_path / "state")
    camera = netco_simulate(spec, state)
    secret, recipient = generate_identity()
    (tmp_path / "key.txt").write_text(secret + "\n")
    catalog_path = tmp_path / "catalog.sqlite"
    config = tmp_path / "dockd.toml"
    config.write_text(
        f'[storage]\npath = "{tmp_path / "evidence"}"\nmin_free_mib = 0\n'
        f'[catalog]\nurl = "sqlite:///{catalog_path}"\n'
        f'[encryption]\nrecipients = ["{recipient}"]\n'
        f'[drivers]\ndropin_dir = "{tmp_path / "drivers.d"}"\n'
        '[log]\nformat = "json"\n')
    umockdev_dock.plug(camera, slot=5)  # docked before dockd starts: found by coldplug
    try:
        proc = subprocess.run([str(DOCKD), "run", "--config", str(config), "--once"],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        umockdev_dock.unplug(5)
        camera.close()
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    [docked] = [e for e in events if e["event"] == "camera_docked"]
    assert (docked["serial"], docked["slot"], docked["port"]) == ("NC-UMOCK-7", 5, "1-1.5")
    [session] = [e for e in events if e["event"] == "dock_session"]
    assert (session["listed"], session["stored"], session["deleted"]) == (2, 2, 2)
    assert state.recordings() == []  # deleted on the camera, each after its durable copy

    with Catalog.open(f"sqlite:///{catalog_path}") as catalog:
        rows = {r.camera_name: r for r in catalog.recordings()}
        assert catalog.verify_chain() == []
    for i, (name, size) in enumerate(SIZES.items()):
        row = rows[name.decode()]
        assert row.status == "deleted_from_camera"
        plain = subprocess.run(["age", "-d", "-i", str(tmp_path / "key.txt"), row.store_path],
                               capture_output=True, check=True).stdout
        assert hashlib.sha256(plain).hexdigest() == _content_sha(size, i)
