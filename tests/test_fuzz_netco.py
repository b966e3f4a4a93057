"""Fuzzing the NetCo host against damaged firmware answers, end to end through the real
pyusb core: the simulated firmware's bulk answers are mutated (bits flipped, cut short,
repeated, replaced by random bytes) and the host session must answer with the recording's
exact bytes or a typed DeviceError — never another exception or a hang.

(The codec's own decoders are fuzzed in drivers/netco/tests/test_netco_protocol.py.)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import usb.core
from dockd_netco import DRIVER
from dockd_netco_sim.device import NetcoCamera
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.spec import CameraSpec, RecordingSpec
from dockd_sim.state import CameraState
from fuzz_support import FUZZ, bounded
from hypothesis import given
from hypothesis import strategies as st

from dockd.errors import DeviceError

STARTED = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
RECORDINGS = (RecordingSpec(name=b"a.mp4", started=STARTED, size=200_000, seed=1),
              RecordingSpec(name=b"b.mp4", started=STARTED, size=0, seed=2))

# one damage: (index of the bulk answer, what to do, where, a byte)
Damage = tuple[int, int, int, int]
damages = st.lists(st.tuples(st.integers(0, 14), st.integers(0, 4), st.integers(0, 1 << 16),
                             st.integers(0, 255)), min_size=1, max_size=3)


class DamagingCamera(NetcoCamera):
    """The real simulated firmware, whose n-th bulk answer is damaged as planned."""

    def __init__(self, spec: CameraSpec, state: CameraState, plan: list[Damage]) -> None:
        super().__init__(spec, state, block_size=64 * 1024)
        self.plan = plan
        self.count = 0

    def bulk_read_into(self, endpoint: int, buffer: memoryview) -> int:
        n = super().bulk_read_into(endpoint, buffer)
        index, self.count = self.count, self.count + 1
        for at, op, where, byte in self.plan:
            if at != index or n == 0:
                continue
            pos = where % n
            if op == 0:
                buffer[pos] ^= 1 << (byte % 8)  # a flipped bit
            elif op == 1:
                n = pos  # cut short
            elif op == 2:
                buffer[pos] = byte  # a byte replaced
            elif op == 3:
                buffer[:n] = bytes([byte]) * n  # garbage of the right length
            else:
                extra = min(len(buffer) - n, 1 + byte)  # babble past the end
                buffer[n : n + extra] = bytes(extra)
                n += extra
        return n


def _session_run(plan: list[Damage], state_dir: Path) -> None:
    spec = CameraSpec(serial="NC-FUZZ", slot=1, recordings=RECORDINGS)
    state = CameraState.load(spec, state_dir, reset=True)
    backend = SimBackend()
    address = backend.plug(DamagingCamera(spec, state, plan), port_numbers=(1, 1))
    try:
        device = usb.core.find(backend=backend, idVendor=0x1209)
        session = DRIVER.open_session(device, timeout_s=0.05)
        try:
            session.identity()
            session.battery()
            session.shift_log()
            for info in session.recordings():
                stream = session.open_recording(info.name)
                buf = bytearray(1 << 16)
                digest = hashlib.sha256()
                while n := stream.readinto(memoryview(buf)):
                    digest.update(buf[:n])
                stream.close()
                # damage that got through (into a frame nobody reads) changed no byte: every
                # data block is CRC-checked (a CRC-32 collision is a 2^-32 chance)
                assert digest.digest() == info.sha256
        finally:
            session.close()
    finally:
        backend.unplug(address)


OUTCOMES: dict[str, int] = {}


@FUZZ
@given(plan=damages)
def test_damaged_answers_give_typed_errors(tmp_path: Path, plan: list[Damage]) -> None:
    with bounded("netco session"):
        try:
            _session_run(plan, tmp_path / "state")
            outcome = "clean"
        except DeviceError as exc:
            outcome = type(exc).__name__
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def test_the_damage_was_seen() -> None:
    # runs after the fuzz target (file order): most plans must have hit something
    if OUTCOMES:
        assert sum(v for k, v in OUTCOMES.items() if k != "clean") > OUTCOMES.get("clean", 0)
        assert "ProtocolError" in OUTCOMES
    print("netco fuzz outcomes:", OUTCOMES)


def test_an_undamaged_camera_reads_cleanly(tmp_path: Path) -> None:
    _session_run([(10_000, 0, 0, 0)], tmp_path / "state")
