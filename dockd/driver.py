"""The vendor driver interface. The core talks to cameras only through this.

A driver package registers one `Driver` object in the `dockd.drivers` entry-point group.
The core discovers devices and matches them to a driver from data (match files, see
`dockd.matching`); the driver is then asked to open a `CameraSession` on the pyusb device.
Every method raises only `dockd.errors.DeviceError` subclasses for device trouble.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Any, Protocol, runtime_checkable

from dockd.model import BatterySnapshot, CameraIdentity, ListingEntry, ShiftLog


class RecordingStream(Protocol):
    """A recording being read from the camera, starting at some byte offset."""

    @property
    def offset(self) -> int:
        """Byte offset of the next byte `readinto` returns."""
        ...

    @property
    def size(self) -> int:
        """Total size of the recording as announced by the camera."""
        ...

    def readinto(self, buffer: memoryview) -> int:
        """Fill up to len(buffer) bytes; return how many. 0 only at the end of the recording.

        Never returns more than `size - offset` bytes: a camera that streams more than it
        announced raises ProtocolError.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class CameraSession(Protocol):
    """An open conversation with one docked camera."""

    def identity(self) -> CameraIdentity: ...

    def battery(self) -> BatterySnapshot: ...

    def shift_log(self) -> ShiftLog: ...

    def recordings(self) -> list[ListingEntry]:
        """Everything the camera lists, in its order: a `RecordingInfo` for each recording
        to ingest, a `RefusedRecording` for each entry whose own name or metadata is hostile
        (a control/format character, NUL, invalid UTF-8, a path, a size beyond the limit, a
        start time out of range, a name listed twice). The core never reads or deletes a
        refused entry; it stays on the camera, and its siblings are ingested as usual.

        A listing that cannot be read at all (damaged framing, paging or totals that do not
        add up) still raises a DeviceError (ProtocolError): then no entry can be trusted.
        """
        ...

    def open_recording(self, name: str, offset: int = 0) -> RecordingStream: ...

    def delete_recording(self, name: str) -> None: ...

    def set_clock(self, when: datetime) -> None: ...

    def close(self) -> None: ...


class Driver(Protocol):
    """What a driver package exports through the `dockd.drivers` entry point."""

    #: short stable name, e.g. "netco"; used in match files and logs
    name: str
    #: human-readable vendor name
    vendor: str

    def match_data(self) -> Traversable:
        """The driver's packaged match file (TOML, format in docs/drivers.md)."""
        ...

    def open_session(self, device: Any, *, timeout_s: float,
                     options: Mapping[str, Any]) -> CameraSession:
        """Open a session on a device the core matched to this driver: a pyusb
        `usb.core.Device` (bus `usb`), or a `dockd.events.VolumeRef` / `FolderRef` (buses
        `volume`, `folder`). `options` are the matching rule's `[match.options]`, as they
        are (the driver checks them; an unusable one is a ConfigError naming the key)."""
        ...
