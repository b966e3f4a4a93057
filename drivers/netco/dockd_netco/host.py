"""Host side of the NetCo protocol: a `dockd.driver.CameraSession` over a pyusb device.

Every pyusb failure becomes a typed `dockd.errors.DeviceError`. After any failure the
session owes the camera a RESET (vendor control request) before its next command, which
discards whatever the camera still had queued; with sequence numbers on every frame this
keeps host and camera in step after a timeout, a stall or a damaged frame.
"""

from __future__ import annotations

import array
import contextlib
import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import usb.core
import usb.util

from dockd.errors import (
    DeviceError,
    DeviceGone,
    DeviceRefused,
    DeviceTimeout,
    ProtocolError,
    Unsupported,
)
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ListingEntry,
    RefusedRecording,
    ShiftEvent,
    ShiftLog,
    ShiftSample,
    escape_name,
)
from dockd_netco import protocol as p

T = TypeVar("T")

#: stale answers (from before a timeout) the host skips before it calls the stream broken
MAX_STALE_FRAMES = 4
_GONE_ERRNOS = {errno.ENODEV, errno.ENOENT, errno.ESHUTDOWN}


def translate_usb_error(e: Exception, what: str) -> DeviceError:
    """A pyusb exception as the typed error the core acts on."""
    if isinstance(e, usb.core.USBTimeoutError) or getattr(e, "errno", None) == errno.ETIMEDOUT:
        return DeviceTimeout(f"camera did not answer in time while {what}")
    code = getattr(e, "errno", None)
    if code in _GONE_ERRNOS or "No such device" in str(e):
        return DeviceGone(f"camera left the bus while {what}")
    if code == errno.EPIPE:
        return DeviceRefused(f"camera stalled the endpoint while {what}")
    if code == errno.EOVERFLOW:
        return ProtocolError(f"camera sent more than the host asked for while {what}")
    return DeviceError(f"USB error while {what}: {e}")


@contextmanager
def usb_errors(what: str) -> Iterator[None]:
    try:
        yield
    except usb.core.USBError as e:
        raise translate_usb_error(e, what) from e


class NetcoSession:
    """Implements `dockd.driver.CameraSession` for NetCo cameras."""

    def __init__(self, device: Any, *, timeout_s: float) -> None:
        self._dev = device
        self._timeout_ms = max(1, round(timeout_s * 1000))
        self._seq = 0
        self._rx = array.array("B", bytes(p.MAX_FRAME))  # one reused frame buffer
        self._active: NetcoStream | None = None
        self._needs_reset = True  # a previous session may have left answers queued
        self._claimed = False
        self._closed = False
        self._halted = False
        try:
            with usb_errors("opening the camera"):
                self._claim()
            raw = self._call("identifying the camera", lambda: self._dev.ctrl_transfer(
                p.REQTYPE_IN, p.REQ_IDENTIFY, 0, p.INTERFACE_NUMBER, p.IDENTIFY.size,
                self._timeout_ms))
            self.limits = p.decode_identify(bytes(raw))
            self._reset()
        except BaseException:
            self._release()  # a session that failed to open holds nothing
            raise

    # --- CameraSession -----------------------------------------------------------------

    def identity(self) -> CameraIdentity:
        return p.decode_info(self._command(p.Command.GET_INFO))

    def battery(self) -> BatterySnapshot:
        return p.decode_battery(self._command(p.Command.GET_BATTERY))

    def shift_log(self) -> ShiftLog:
        samples: list[ShiftSample] = []
        events: list[ShiftEvent] = []
        page, count = 0, 1
        while page < count:
            got = p.decode_shift_page(
                self._command(p.Command.GET_SHIFT_LOG, p.encode_page_request(page)))
            count = _check_paging(got.page, got.page_count, page, count)
            samples.extend(got.samples)
            events.extend(got.events)
            page += 1
        return ShiftLog(tuple(samples), tuple(events))

    def recordings(self) -> list[ListingEntry]:
        """Every entry the camera lists, in its order. An entry with a hostile name, size
        or start time, and every entry of a name listed more than once, is refused alone
        (`RefusedRecording`); paging or totals that do not add up fail the whole listing."""
        entries: list[ListingEntry] = []
        raw_names: list[bytes] = []
        page, count, total = 0, 1, -1
        while page < count:
            got = p.decode_list_page(
                self._command(p.Command.LIST_RECORDINGS, p.encode_page_request(page)))
            count = _check_paging(got.page, got.page_count, page, count)
            if total not in (-1, got.total):
                raise ProtocolError(f"camera changed its recording count from {total} to "
                                    f"{got.total} while listing")
            total = got.total
            entries.extend(got.entries)
            raw_names.extend(got.raw_names)
            if len(entries) > total:
                raise ProtocolError(f"camera listed more recordings than its total {total}")
            page += 1
        if len(entries) != total:
            raise ProtocolError(f"camera announced {total} recordings but listed "
                                f"{len(entries)}")
        return _refuse_duplicates(entries, raw_names)

    def open_recording(self, name: str, offset: int = 0) -> NetcoStream:
        if not 0 <= offset <= p.MAX_RECORDING_SIZE:
            raise ValueError(f"offset {offset} is outside 0..{p.MAX_RECORDING_SIZE}")
        return NetcoStream(self, _wire_name(name), offset)

    def delete_recording(self, name: str) -> None:
        p.expect_empty(self._command(p.Command.DELETE, p.encode_name(_wire_name(name))),
                       "DELETE answer")

    def set_clock(self, when: datetime) -> None:
        p.expect_empty(self._command(p.Command.SET_CLOCK, p.encode_clock(when)),
                       "SET_CLOCK answer")

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(DeviceError):  # best effort: the camera may be gone
            self._command(p.Command.DONE)
        self._closed = True
        self._active = None
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(usb.core.USBError):
            if self._claimed:
                usb.util.release_interface(self._dev, p.INTERFACE_NUMBER)
        self._claimed = False
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(self._dev)

    # --- transactions (also used by NetcoStream) ---------------------------------------

    @contextmanager
    def _queue_unknown_on_failure(self) -> Iterator[None]:
        """Any failure leaves the camera's queue in an unknown state (answers may still be
        queued, an endpoint may be halted): the next command resets it first. The one place
        that rule is kept, for pyusb calls, frames and streams alike."""
        try:
            yield
        except DeviceError as e:
            self._needs_reset = True
            if isinstance(e.__cause__, usb.core.USBError) and e.__cause__.errno == errno.EPIPE:
                self._halted = True
            raise

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """One pyusb call, its errors typed."""
        with self._queue_unknown_on_failure(), usb_errors(what):
            return fn()

    def _claim(self) -> None:
        try:
            cfg = self._dev.get_active_configuration()
        except usb.core.USBError:
            self._dev.set_configuration()
            cfg = self._dev.get_active_configuration()
        intf = usb.util.find_descriptor(cfg, bInterfaceNumber=p.INTERFACE_NUMBER)
        eps = {ep.bEndpointAddress for ep in intf} if intf is not None else set()
        if intf is None or intf.bInterfaceClass != p.INTERFACE_CLASS or not {
                p.EP_IN, p.EP_OUT} <= eps:
            raise Unsupported("device lacks the NetCo vendor interface and endpoints")
        usb.util.claim_interface(self._dev, p.INTERFACE_NUMBER)
        self._claimed = True

    def _reset(self) -> None:
        """Make the camera drop anything queued and confirm it is idle."""
        if self._halted:  # a stalled endpoint stays halted until the host clears it
            self._call("clearing a stalled endpoint", lambda: self._dev.clear_halt(p.EP_OUT))
            self._call("clearing a stalled endpoint", lambda: self._dev.clear_halt(p.EP_IN))
            self._halted = False
        self._call("resetting the camera's command queue", lambda: self._dev.ctrl_transfer(
            p.REQTYPE_OUT, p.REQ_RESET, 0, p.INTERFACE_NUMBER, None, self._timeout_ms))
        raw = self._call("reading the camera's status", lambda: self._dev.ctrl_transfer(
            p.REQTYPE_IN, p.REQ_STATUS, 0, p.INTERFACE_NUMBER, p.STATUS_BLOCK.size,
            self._timeout_ms))
        status = p.decode_status(bytes(raw))
        if status.state is not p.DeviceState.IDLE:
            raise ProtocolError(f"camera is still {status.state.name} after a reset")
        self._needs_reset = False

    def _begin(self, owner: NetcoStream | None) -> None:
        """Take the bulk pipe for a command (owner None) or a stream's READ window."""
        if self._closed:
            raise ValueError("session is closed")
        active = self._active
        if active is not None and active is not owner and active.interrupt():
            self._needs_reset = True  # its data blocks are still queued on the camera
        self._active = owner
        if self._needs_reset:
            self._reset()

    def _send(self, command: p.Command, payload: bytes) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        frame = p.encode_frame(command, self._seq, payload)
        written = self._call(f"sending {command.name}",
                             lambda: self._dev.write(p.EP_OUT, frame, self._timeout_ms))
        with self._queue_unknown_on_failure():
            if written != len(frame):
                raise DeviceError(f"camera accepted {written} of {len(frame)} bytes of "
                                  f"{command.name}")
        return self._seq

    def _receive(self, command: p.Command, seq: int) -> bytes:
        """The payload of the answer to `seq`; an error status raises DeviceRefused."""
        with self._queue_unknown_on_failure():
            for _ in range(MAX_STALE_FRAMES + 1):
                n = self._call(f"waiting for {command.name}",
                               lambda: self._dev.read(p.EP_IN, self._rx, self._timeout_ms))
                frame = p.decode_frame(memoryview(self._rx)[:n], expect_response=True)
                if frame.seq != seq:
                    continue  # an answer the camera queued before a timeout: skip it
                if frame.command is not command:
                    raise ProtocolError(f"camera answered {frame.command.name} to "
                                        f"{command.name}")
                if frame.status is p.Status.UNKNOWN_COMMAND:
                    raise Unsupported(f"camera does not support {command.name}")
                if frame.status is not p.Status.OK:
                    raise DeviceRefused(f"{command.name}: {p.STATUS_TEXT[frame.status]}",
                                        int(frame.status))
                return frame.payload
            raise ProtocolError(f"camera sent {MAX_STALE_FRAMES + 1} answers with the wrong "
                                f"sequence number while waiting for {command.name}")

    def _command(self, command: p.Command, payload: bytes = b"") -> bytes:
        self._begin(None)
        return self._receive(command, self._send(command, payload))

    def _read_raw(self, buffer: array.array[int]) -> int:
        n: int = self._call("reading recording data",
                            lambda: self._dev.read(p.EP_IN, buffer, self._timeout_ms))
        return n


def _check_paging(page: int, page_count: int, want: int, count: int) -> int:
    if page != want:
        raise ProtocolError(f"camera sent page {page} when asked for page {want}")
    if want > 0 and page_count != count:
        raise ProtocolError(f"camera changed its page count from {count} to {page_count}")
    return page_count


def _refuse_duplicates(entries: list[ListingEntry],
                       raw_names: list[bytes]) -> list[ListingEntry]:
    """Refuse every entry whose name the camera lists more than once: READ and DELETE go by
    name, so either could reach the other recording (raw bytes compared, refused or not)."""
    times: dict[bytes, int] = {}
    for raw in raw_names:
        times[raw] = times.get(raw, 0) + 1
    out: list[ListingEntry] = []
    for entry, raw in zip(entries, raw_names, strict=True):
        n = times[raw]
        if n == 1:
            out.append(entry)
            continue
        reason = (f"camera lists this name {n} times: reading or deleting it by name would "
                  "be ambiguous; kept on the camera")
        if isinstance(entry, RefusedRecording):
            reason = f"{entry.reason}; {reason}"
        out.append(RefusedRecording(
            label=escape_name(raw), reason=reason, size=entry.size, started=entry.started,
            sha256=entry.sha256, duration_s=entry.duration_s, prerecord_s=entry.prerecord_s))
    return out


def _wire_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    try:
        p.check_name(raw)
    except ProtocolError as e:
        raise ValueError(f"not a camera recording name: {e}") from None
    return raw


class NetcoStream:
    """Implements `dockd.driver.RecordingStream`: READ windows of up to 64 MiB, each sent
    as CRC-checked blocks of up to 1 MiB, copied into the caller's buffer."""

    def __init__(self, session: NetcoSession, name: bytes, offset: int) -> None:
        self._s = session
        self._name = name
        self.offset = offset  # next byte readinto returns
        self.size = -1
        self._wire = offset  # next byte the camera must send
        self._window_left = 0
        self._seq = 0
        self._block_size = 0
        self._full = array.array("B")  # reused for every full-size block
        self._block = self._full  # the block being served (full, or a short last one)
        self._block_len = 0
        self._block_pos = 0
        self._error: DeviceError | None = None
        self._closed = False
        self._guarded(self._open_window)

    def readinto(self, buffer: memoryview) -> int:
        if self._closed:
            raise ValueError("stream is closed")
        if self._error is not None:
            raise self._error
        if len(buffer) == 0:
            return 0
        if self._block_pos == self._block_len:
            if self._wire >= self.size:
                return 0
            self._guarded(self._next_block)
        n = min(len(buffer), self._block_len - self._block_pos)
        with memoryview(self._block) as block:
            buffer[:n] = block[self._block_pos : self._block_pos + n]
        self._block_pos += n
        self.offset += n
        return n

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.interrupt():
                self._s._needs_reset = True
            if self._s._active is self:
                self._s._active = None

    def interrupt(self) -> bool:
        """Another command takes the pipe; True if this stream's window was still open
        (the next readinto asks for a fresh window from where the camera stopped)."""
        was_open = self._window_left > 0
        self._window_left = 0
        return was_open

    def _guarded(self, fn: Callable[[], None]) -> None:
        """A failed step ends this stream for good (its error is kept for every later read)
        and leaves the session's queue to be reset."""
        try:
            with self._s._queue_unknown_on_failure():
                fn()
        except DeviceError as e:
            self._error = e
            self._window_left = 0
            raise

    def _open_window(self) -> None:
        want = p.MAX_READ_LENGTH if self.size < 0 else min(p.MAX_READ_LENGTH,
                                                           self.size - self._wire)
        self._s._begin(self)
        seq = self._s._send(p.Command.READ,
                            p.encode_read_request(p.ReadRequest(self._name, self._wire, want)))
        answer = p.decode_read_answer(self._s._receive(p.Command.READ, seq))
        if answer.offset != self._wire:
            raise ProtocolError(f"camera answered READ at {answer.offset}, asked {self._wire}")
        if answer.length > want:
            raise ProtocolError(f"camera offers {answer.length} bytes, asked for {want}")
        if self.size < 0:
            self.size = answer.size
        elif answer.size != self.size:
            raise ProtocolError(f"recording size changed from {self.size} to {answer.size}")
        if answer.length == 0 and self._wire < self.size:
            raise ProtocolError(f"camera sends no data at {self._wire} of {self.size}")
        if answer.block_size != len(self._full):
            self._full = array.array("B", bytes(answer.block_size))
        self._block_size = answer.block_size
        self._seq = seq
        self._window_left = answer.length

    def _next_block(self) -> None:
        if self._window_left == 0:
            self._open_window()
        head = p.decode_data_head(self._s._receive(p.Command.DATA, self._seq))
        if head.offset != self._wire:
            raise ProtocolError(f"camera sent data for {head.offset}, expected {self._wire}")
        if head.length > self._window_left:
            raise ProtocolError(f"camera sends {head.length} bytes, only {self._window_left} "
                                "were announced")
        if head.length > self._block_size:
            raise ProtocolError(f"data block of {head.length} bytes exceeds the announced "
                                f"block size {self._block_size}")
        if head.length == self._block_size:
            self._block = self._full
        elif head.length != len(self._block) or self._block is self._full:
            # pyusb reads whole arrays; a short (last) block gets an array of its own size
            self._block = array.array("B", bytes(head.length))
        n = self._s._read_raw(self._block)
        if n != head.length:
            raise ProtocolError(f"data block at {head.offset} is {n} bytes, header said "
                                f"{head.length}")
        with memoryview(self._block) as block:
            if p.crc32(block) != head.crc32:
                raise ProtocolError(f"data block at {head.offset} fails its CRC")
        self._wire += n
        self._window_left -= n
        self._block_len = n
        self._block_pos = 0
