"""Simulated NetCo BC-300 firmware: answers the protocol with the same codec as the host.

Scenario faults (dockd_sim.spec.FaultKind) are injected here, where real firmware or a
real cable would cause them; every firing is booked through `CameraState.take_fault`, so
a fault that fired before a restart does not fire again. Hostile firmware
(`[camera.hostile]`, dockd_sim.spec.HostileSpec) is played here too: absurd sizes, extra
bytes, an endless listing, answers ever slower, telemetry out of range.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dockd_netco import protocol as p
from dockd_sim.charging import docked_battery
from dockd_sim.device import (
    SimGone,
    SimNoAnswer,
    SimStall,
    UsbDeviceDescription,
    UsbEndpoint,
    UsbInterface,
)
from dockd_sim.spec import CameraSpec, FaultKind, FaultSpec

from dockd.errors import ProtocolError
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ChargingState,
    ShiftEvent,
    ShiftEventKind,
    ShiftSample,
)

if TYPE_CHECKING:
    from dockd_sim.state import CameraState, SimRecording

DEFAULT_MODEL = "BC-300"
#: slower_and_slower: the first bulk answer is this late, each next one twice as late ...
_FIRST_DELAY_S = 0.001
#: ... and once the delay would pass this, the camera stops answering at all
_GIVE_UP_DELAY_S = 1.0


def describe(spec: CameraSpec) -> UsbDeviceDescription:
    return UsbDeviceDescription(
        vendor_id=p.VENDOR_ID, product_id=p.PRODUCT_ID, manufacturer="NetCo",
        product=f"NetCo {spec.model or DEFAULT_MODEL}", serial=spec.serial,
        interfaces=(UsbInterface(
            number=p.INTERFACE_NUMBER, interface_class=p.INTERFACE_CLASS,
            endpoints=(UsbEndpoint(p.EP_OUT), UsbEndpoint(p.EP_IN)),
        ),),
    )


@dataclass
class _Raw:
    """The raw bytes of one data block, waiting in the camera's buffer."""

    data: memoryview
    last: bool  # the READ is complete once this block is out
    sent: int = 0


class _Stall:
    """The camera stops answering here (the host times out)."""


class _Unplug:
    """The camera leaves the bus here."""


_Transfer = bytes | _Raw | _Stall | _Unplug
#: the scenario's command names (dockd_sim.spec.FAULT_COMMANDS) for NetCo's commands
_COMMAND_NAMES = {
    p.Command.GET_INFO: "info", p.Command.GET_BATTERY: "battery",
    p.Command.GET_SHIFT_LOG: "shift_log", p.Command.LIST_RECORDINGS: "list",
    p.Command.DELETE: "delete", p.Command.SET_CLOCK: "set_clock",
}
#: faults that take effect at exactly at_byte (the others act on whole blocks)
_CUTTING = frozenset({FaultKind.UNPLUG, FaultKind.STALL, FaultKind.READ_ERROR})


class NetcoCamera:
    """Implements `dockd_sim.device.SimCamera`."""

    def __init__(self, spec: CameraSpec, state: CameraState, *, block_size: int = p.MAX_BLOCK,
                 list_page_size: int = p.MAX_ENTRIES_PER_PAGE,
                 shift_page_size: int = 512) -> None:
        if not 0 < block_size <= p.MAX_BLOCK:
            raise ValueError(f"block size {block_size} outside 1..{p.MAX_BLOCK}")
        self.spec = spec
        self.state = state
        self.description = describe(spec)
        self.block_size = block_size
        self.list_page_size = list_page_size
        self.shift_page_size = shift_page_size
        self._docked_at = state.clock()  # shift log times are relative to docking
        self._plugged = state.monotonic()  # the battery charges from here (dockd_sim.charging)
        self._buf = memoryview(bytearray(block_size))  # one reused flash read buffer
        self._out: Iterator[_Transfer] | None = None
        self._held: _Transfer | None = None
        self._streaming: bytes | None = None  # name of the recording being streamed
        self._gone = False
        self._last_seq = 0
        self._last_status: int = p.Status.OK
        self._delay_s = _FIRST_DELAY_S  # slower_and_slower: lateness of the next answer
        #: a probe (scripts/bench_hotplug.py): called with the recording's name and the byte
        #: count each time a data block's first bytes go out on bulk IN, on the
        #: transport's thread (keep it quick); None = no probe
        self.on_data: Callable[[bytes, int], None] | None = None

    # --- SimCamera -----------------------------------------------------------------

    def unplugged(self) -> bool:
        return self._gone

    def close(self) -> None:
        self.state.save()

    def control_in(self, request_type: int, request: int, value: int, index: int,
                   length: int) -> bytes:
        self._check_bus()
        if request_type != p.REQTYPE_IN:
            raise SimStall
        if request == p.REQ_IDENTIFY:
            answer = p.encode_identify(max_block=self.block_size)
        elif request == p.REQ_STATUS:
            answer = p.encode_status(self._device_state(), self._last_status, self._last_seq)
        else:
            raise SimStall
        if length < len(answer):
            raise SimStall  # a short wLength is a host bug the firmware refuses
        return answer

    def control_out(self, request_type: int, request: int, value: int, index: int,
                    data: bytes) -> None:
        self._check_bus()
        if request_type != p.REQTYPE_OUT or request != p.REQ_RESET or data:
            raise SimStall
        self._abort()

    def clear_halt(self, endpoint: int) -> None:
        self._check_bus()

    def bulk_write(self, endpoint: int, data: bytes) -> int:
        self._check_bus()
        if endpoint != p.EP_OUT:
            raise SimStall
        self._abort()  # a new command cancels whatever was still queued for the host
        self._out = self._answer(data)
        return len(data)

    def bulk_read_into(self, endpoint: int, buffer: memoryview) -> int:
        self._check_bus()
        if endpoint != p.EP_IN:
            raise SimStall
        transfer = self._next_transfer()
        if transfer is None:
            raise SimNoAnswer
        self._slow_down()
        if isinstance(transfer, _Unplug):
            self._leave_bus()
            raise SimGone
        if isinstance(transfer, _Stall):
            self._abort()  # the camera recovers for the next command
            raise SimNoAnswer
        if isinstance(transfer, _Raw):
            n = min(len(buffer), len(transfer.data) - transfer.sent)
            buffer[:n] = transfer.data[transfer.sent : transfer.sent + n]
            if transfer.sent == 0 and self.on_data is not None:
                self.on_data(self._streaming or b"", n)
            transfer.sent += n
            if transfer.sent < len(transfer.data):
                self._held = transfer  # the host reads the rest with its next transfer
            elif transfer.last:
                self._abort()  # nothing more queued: STATUS says idle
            return n
        if len(transfer) > len(buffer):
            raise SimStall  # babble: the host's buffer cannot hold a whole frame
        buffer[: len(transfer)] = transfer
        return len(transfer)

    # --- plumbing --------------------------------------------------------------------

    def _check_bus(self) -> None:
        if self._gone:
            raise SimGone

    def _leave_bus(self) -> None:
        self._gone = True
        self._abort()
        self.state.save()

    def _abort(self) -> None:
        self._out = None
        self._held = None
        self._streaming = None

    def _device_state(self) -> p.DeviceState:
        if self._out is None and self._held is None:
            return p.DeviceState.IDLE
        return p.DeviceState.STREAMING if self._streaming else p.DeviceState.RESPONDING

    def _next_transfer(self) -> _Transfer | None:
        if self._held is not None:
            held, self._held = self._held, None
            return held
        if self._out is None:
            return None
        transfer = next(self._out, None)
        if transfer is None:
            self._abort()
        return transfer

    def _faults(self, kind: FaultKind) -> Iterator[tuple[int, FaultSpec]]:
        for i, fault in enumerate(self.spec.faults):
            if fault.kind is kind:
                yield i, fault

    def _fire(self, kind: FaultKind, name: bytes | None, lo: int = 0, hi: int = 0,
              size: int = 0) -> FaultSpec | None:
        """The first fault of `kind` bound to `name` (or to any recording) whose at_byte
        lies in [lo, hi), consuming one firing; at_byte past the end counts as the last byte.
        With name None only unbound faults match, and at_byte is ignored."""
        for i, fault in self._faults(kind):
            if fault.command is not None:
                continue  # bound to a command: `_fire_on`
            if name is None:
                if fault.recording is not None:
                    continue
            else:
                if fault.recording not in (None, name):
                    continue
                at = _at(fault, size)
                if not lo <= at < hi:
                    continue
            if self.state.take_fault(i):
                return fault
        return None

    def _fire_on(self, kind: FaultKind, command: str | None) -> bool:
        """A fault of `kind` bound to `command` (`[[camera.fault]] command = ...`) fires."""
        if command is None:
            return False
        for i, fault in self._faults(kind):
            if fault.command == command and self.state.take_fault(i):
                return True
        return False

    def _slow_down(self) -> None:
        if self.spec.hostile.slower_and_slower:
            if self._delay_s > _GIVE_UP_DELAY_S:
                self._abort()
                raise SimNoAnswer
            time.sleep(self._delay_s)
            self._delay_s *= 2
        for i, fault in self._faults(FaultKind.SLOW):
            if fault.recording is not None and fault.recording != self._streaming:
                continue
            if self.state.take_fault(i):
                time.sleep(fault.delay_s)
            return

    # --- commands --------------------------------------------------------------------

    def _answer(self, data: bytes) -> Iterator[_Transfer]:
        try:
            frame = p.decode_frame(data, expect_response=False)
        except ProtocolError as e:
            # echo what can be read of the header so the host can match the answer
            seq = int.from_bytes(data[8:12], "little") if len(data) >= 12 else 0
            command = data[6] if len(data) > 6 else p.Command.GET_INFO
            unknown = isinstance(e, p.UnknownCommand)
            yield self._frame(command, seq,
                              p.Status.UNKNOWN_COMMAND if unknown else p.Status.BAD_FRAME)
            return
        self._last_seq = frame.seq
        if frame.command is p.Command.DATA:
            yield self._frame(frame.command, frame.seq, p.Status.UNKNOWN_COMMAND)
            return
        # faults bound to this command, then unbound stall/bad-frame faults hit the next
        # answer of any command
        op = _COMMAND_NAMES.get(frame.command)
        if self._fire_on(FaultKind.UNPLUG, op):
            yield _Unplug()
            return
        if self._fire_on(FaultKind.STALL, op) or self._fire(FaultKind.STALL, None):
            yield _Stall()
            return
        if self._fire_on(FaultKind.READ_ERROR, op):
            yield self._frame(frame.command, frame.seq, p.Status.READ_ERROR)
            return
        garble = (self._fire_on(FaultKind.BAD_FRAME, op)
                  or self._fire(FaultKind.BAD_FRAME, None) is not None)
        try:
            if frame.command is p.Command.READ:
                yield from self._read(frame.seq, p.decode_read_request(frame.payload), garble)
                return
            status, payload = self._dispatch(frame)
        except ProtocolError:
            status, payload = p.Status.BAD_REQUEST, b""
        yield self._frame(frame.command, frame.seq, status, payload, garble=garble)

    def _frame(self, command: int, seq: int, status: int, payload: bytes = b"", *,
               garble: bool = False) -> bytes:
        self._last_status = status
        frame = p.encode_frame(command, seq, payload, status=status, response=True)
        if garble:
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])  # break the CRC
        return frame

    def _dispatch(self, frame: p.Frame) -> tuple[p.Status, bytes]:
        cmd = frame.command
        try:
            if cmd is p.Command.GET_INFO:
                p.expect_empty(frame.payload, "GET_INFO")
                return p.Status.OK, p.encode_info(self._identity())
            if cmd is p.Command.GET_BATTERY:
                p.expect_empty(frame.payload, "GET_BATTERY")
                return p.Status.OK, self._battery_payload()
            if cmd is p.Command.GET_SHIFT_LOG:
                return self._shift_page(p.decode_page_request(frame.payload))
            if cmd is p.Command.LIST_RECORDINGS:
                return self._list_page(p.decode_page_request(frame.payload))
            if cmd is p.Command.DELETE:
                found = self.state.delete(p.decode_name(frame.payload))
                return (p.Status.OK if found else p.Status.NOT_FOUND), b""
            if cmd is p.Command.SET_CLOCK:
                self.state.set_clock(p.decode_clock(frame.payload))
                return p.Status.OK, b""
            if cmd is p.Command.DONE:
                p.expect_empty(frame.payload, "DONE")
                self.state.save()
                return p.Status.OK, b""
        except (ValueError, OverflowError, KeyError, struct.error):
            # the scenario holds a value the wire format cannot carry: firmware error
            return p.Status.INTERNAL, b""
        return p.Status.UNKNOWN_COMMAND, b""

    def _identity(self) -> CameraIdentity:
        return CameraIdentity(serial=self.spec.serial, model=self.spec.model or DEFAULT_MODEL,
                              firmware=self.spec.firmware, vendor="NetCo",
                              clock=self.state.clock())

    def _battery(self) -> BatterySnapshot:
        b = self.state.battery
        now = docked_battery(b, self.state.monotonic() - self._plugged)
        return BatterySnapshot(now.soc_percent, now.voltage_mv, now.current_ma,
                               now.temperature_c, b.cycle_count, b.design_capacity_mah,
                               b.full_charge_capacity_mah, ChargingState(now.charging))

    def _battery_payload(self) -> bytes:
        """GET_BATTERY's answer; hostile telemetry is packed as raw wire integers (wrapped to
        the field's width), the way broken firmware would send a bad sensor reading."""
        payload = p.encode_battery(self._battery())
        h = self.spec.hostile
        if h.soc_percent is None and h.voltage_mv is None and h.temperature_c is None:
            return payload
        soc, mv, ma, decic, *rest = p.BATTERY.unpack(payload)
        if h.soc_percent is not None:
            soc = round(h.soc_percent * 10) & 0xFFFF
        if h.voltage_mv is not None:
            mv = h.voltage_mv & 0xFFFF
        if h.temperature_c is not None:
            decic = max(-0x8000, min(0x7FFF, round(h.temperature_c * 10)))
        return p.BATTERY.pack(soc, mv, ma, decic, *rest)

    def _size(self, rec: SimRecording) -> int:
        """The size the camera claims for a recording (hostile firmware may lie)."""
        claimed = self.spec.hostile.claimed_size
        return rec.content.size if claimed is None else claimed

    def _shift_page(self, page: int) -> tuple[p.Status, bytes]:
        at = self._docked_at
        samples = [ShiftSample(at + timedelta(seconds=s.offset_s), s.soc_percent, s.voltage_mv,
                               s.current_ma, s.temperature_c) for s in self.spec.shift_samples]
        events = [ShiftEvent(at + timedelta(seconds=e.offset_s), ShiftEventKind(e.kind))
                  for e in self.spec.shift_events]
        size = self.shift_page_size
        count = max(1, -(-max(len(samples), len(events)) // size))
        if page >= count:
            return p.Status.BAD_REQUEST, b""
        lo, hi = page * size, (page + 1) * size
        return p.Status.OK, p.encode_shift_page(
            p.ShiftPage(page, count, tuple(samples[lo:hi]), tuple(events[lo:hi])))

    def _list_page(self, page: int) -> tuple[p.Status, bytes]:
        recs = self.state.recordings()
        size = self.list_page_size
        count = max(1, -(-len(recs) // size))
        total = len(recs)
        if self.spec.hostile.endless_listing:
            # always one more page to come, and the count of recordings grows with it
            count = min(page + 2, p.MAX_LIST_PAGES)
            total = min(len(recs) + page + 1, p.MAX_RECORDINGS)
        if page >= count:
            return p.Status.BAD_REQUEST, b""
        entries = [self._entry(r) for r in recs[page * size : (page + 1) * size]]
        return p.Status.OK, p.encode_list_page(page, count, total, entries)

    def _entry(self, rec: SimRecording) -> p.WireRecording:
        sha = rec.sha256
        for _i, fault in self._faults(FaultKind.HASH_MISMATCH):
            # a standing flaw of the flash: the listed hash is wrong on every listing
            if fault.recording in (None, rec.spec.name):
                sha = bytes([sha[0] ^ 0x01]) + sha[1:]
        return p.WireRecording(
            name=rec.spec.name, size=self._size(rec), started=_aware(rec.spec.started),
            duration_ms=round(rec.spec.duration_s * 1000),
            prerecord_ms=round(rec.spec.prerecord_s * 1000), sha256=sha)

    def _read(self, seq: int, req: p.ReadRequest, garble: bool) -> Iterator[_Transfer]:
        rec = next((r for r in self.state.recordings() if r.spec.name == req.name), None)
        if rec is None:
            yield self._frame(p.Command.READ, seq, p.Status.NOT_FOUND, garble=garble)
            return
        size = self._size(rec)
        if req.offset > size:
            yield self._frame(p.Command.READ, seq, p.Status.BAD_REQUEST, garble=garble)
            return
        length = min(req.length, size - req.offset)
        answer = p.ReadAnswer(size, req.offset, length, self.block_size)
        self._streaming = rec.spec.name
        yield self._frame(p.Command.READ, seq, p.Status.OK, p.encode_read_answer(answer),
                          garble=garble)
        pos, end = req.offset, req.offset + length
        while pos < end:
            n = min(self.block_size, end - pos)
            cut = self._cut_before(rec, pos, pos + n)
            if cut is not None:
                n = cut - pos  # a short block: every byte before the fault arrives
            yield from self._block(seq, rec, pos, n, last=pos + n == end)
            if self._streaming is None:
                return  # the block ended the stream (error status)
            pos += n

    def _cut_before(self, rec: SimRecording, lo: int, hi: int) -> int | None:
        """The first byte in (lo, hi) where an unplug, stall or read error is still due, so
        the block can end just before it (these faults take effect exactly at at_byte)."""
        size = rec.content.size
        cuts = [
            _at(f, size) for i, f in enumerate(self.spec.faults)
            if f.kind in _CUTTING and f.recording in (None, rec.spec.name)
            and f.command is None and self.state.faults_left(i) != 0
        ]
        inside = [c for c in cuts if lo < c < hi]
        return min(inside) if inside else None

    def _block(self, seq: int, rec: SimRecording, pos: int, n: int, *,
               last: bool) -> Iterator[_Transfer]:
        name, size, hi = rec.spec.name, rec.content.size, pos + n
        if self._fire(FaultKind.UNPLUG, name, pos, hi, size):
            yield _Unplug()
            return
        if self._fire(FaultKind.STALL, name, pos, hi, size):
            yield _Stall()
            return
        if self._fire(FaultKind.READ_ERROR, name, pos, hi, size):
            self._streaming = None
            yield self._frame(p.Command.DATA, seq, p.Status.READ_ERROR)
            return
        view = self._buf[:n]
        got = rec.content.read_into(pos, view)
        if got != n:  # the backing file shrank under the simulator (or a claimed size lied)
            self._streaming = None
            yield self._frame(p.Command.DATA, seq, p.Status.READ_ERROR)
            return
        if last and self.spec.hostile.extra_bytes:
            # hostile: the last block announces and carries more bytes than were asked for
            view = memoryview(bytearray(view) + bytes(self.spec.hostile.extra_bytes))
            n = len(view)
        crc = p.crc32(view)
        corrupt = self._fire(FaultKind.CORRUPT, name, pos, hi, size)
        if corrupt is not None:
            at = _at(corrupt, size) - pos
            view[at] ^= 0x10  # after the CRC was taken: damage on the wire
        garble = self._fire(FaultKind.BAD_FRAME, name, pos, hi, size) is not None
        head = p.encode_data_head(p.DataHead(pos, n, crc))
        yield self._frame(p.Command.DATA, seq, p.Status.OK, head, garble=garble)
        yield _Raw(view, last)


def _at(fault: FaultSpec, size: int) -> int:
    """Where a byte-positioned fault fires: at_byte, or the last byte when it lies past it."""
    return min(fault.at_byte, max(size - 1, 0))


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # naive = UTC
