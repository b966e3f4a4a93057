"""Mass-storage cameras: the filesystems the system has mounted, as `volume` devices.

dockd never mounts anything: a camera that shows up as a USB disk is mounted by the system
(udisks/an automounter, an fstab or mount unit), read-write so recordings can be deleted
after their proof. This watcher reads the mount table at start (coldplug) and whenever it
changes — poll(2) on /proc/self/mountinfo reports POLLPRI on every mount or unmount — and
reports each block-device mount once as ADD, and as REMOVE when it goes.

What matching sees of a volume comes from the block device behind it: the filesystem's
label, UUID and type (from udev's database when udevd runs, else from `blkid -p`, which
reads the superblock itself), and the USB device it hangs off (from sysfs: vendor and
product id, serial, port path → the dock slot). Labels and serials come from the device:
they are matched, logged as values, never used as paths.

The callback runs on the watcher's thread: it must only enqueue.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from dockd.events import Action, DeviceEvent, VolumeRef

log = structlog.get_logger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
#: mounts that are the host's own, never a camera
_SYSTEM_MOUNTS = frozenset({"/", "/boot", "/boot/efi", "/home", "/usr", "/var"})
_BLKID_TIMEOUT_S = 5.0
_MAX_PROP = 256


@dataclass(frozen=True)
class Mount:
    devnum: str  # "major:minor"
    mount_point: str
    fs_type: str
    source: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) + 1 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Block-device mounts (source under /dev/) from /proc/self/mountinfo's text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        source = _unescape(tail[1])
        if not source.startswith("/dev/"):
            continue
        mounts.append(Mount(fields[2], _unescape(fields[4]), tail[0], source))
    return mounts


def _udev_props(devnum: str) -> dict[str, str]:
    """udev's database entry for a block device (empty when udevd does not run)."""
    props: dict[str, str] = {}
    try:
        text = Path(f"/run/udev/data/b{devnum}").read_text(errors="replace")
    except OSError:
        return props
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            props[key] = value[:_MAX_PROP]
    return props


def _blkid(source: str) -> dict[str, str]:
    """Label, UUID and type read from the filesystem itself (no udev needed)."""
    try:
        done = subprocess.run(["blkid", "-p", "-o", "export", source], capture_output=True,
                              text=True, errors="replace", timeout=_BLKID_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("volume_probe_failed", device=source, error=str(exc))
        return {}
    props = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("LABEL", "UUID", "TYPE"):
            props[f"ID_FS_{key}"] = value[:_MAX_PROP]
    return props


def _usb_parent(devnum: str) -> dict[str, str]:
    """The USB device a block device hangs off, from sysfs: idVendor, idProduct, serial and
    its port path (the directory name, e.g. "1-1.3")."""
    try:
        path = Path(f"/sys/dev/block/{devnum}").resolve(strict=True)
    except OSError:
        return {}
    for parent in (path, *path.parents):
        if (parent / "idVendor").is_file() and (parent / "idProduct").is_file():
            found = {"port_path": parent.name}
            for attr in ("idVendor", "idProduct", "serial"):
                try:
                    found[attr] = (parent / attr).read_text(errors="replace").strip()[:_MAX_PROP]
                except OSError:
                    continue
            return found
    return {}


def _hex(value: str | None) -> int | None:
    try:
        return int(value, 16) if value else None
    except ValueError:
        return None


def probe_volume(mount: Mount) -> VolumeRef:
    props = _udev_props(mount.devnum)
    if "ID_FS_TYPE" not in props:
        props |= _blkid(mount.source)
    usb = _usb_parent(mount.devnum)
    return VolumeRef(
        mount=mount.mount_point, device=mount.source, devnum=mount.devnum,
        fs_type=mount.fs_type, fs_label=props.get("ID_FS_LABEL") or None,
        fs_uuid=props.get("ID_FS_UUID") or None, usb_port_path=usb.get("port_path"),
        usb_vendor_id=_hex(usb.get("idVendor")), usb_product_id=_hex(usb.get("idProduct")),
        usb_serial=usb.get("serial") or None)


class MountWatcher:
    """Reports block-device mounts appearing and disappearing, each once."""

    def __init__(self, callback: Callable[[DeviceEvent], None], *,
                 mountinfo: Path = MOUNTINFO,
                 probe: Callable[[Mount], VolumeRef] = probe_volume) -> None:
        self._callback = callback
        self._mountinfo = mountinfo
        self._probe = probe
        self._known: dict[tuple[str, str], VolumeRef] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("watcher already started")
        self.rescan()  # coldplug: what is mounted now
        self._thread = threading.Thread(target=self._run, name="mount-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def rescan(self) -> None:
        """Compare the mount table with what was reported; report the differences."""
        try:
            mounts = parse_mountinfo(self._mountinfo.read_text(errors="replace"))
        except OSError as exc:
            log.error("mount_table_unreadable", path=str(self._mountinfo), error=str(exc))
            return
        present = {(m.devnum, m.mount_point): m for m in mounts
                   if m.mount_point not in _SYSTEM_MOUNTS}
        for key in [k for k in self._known if k not in present]:
            self._callback(DeviceEvent(Action.REMOVE, self._known.pop(key)))
        for key, mount in present.items():
            if key not in self._known:
                ref = self._probe(mount)
                self._known[key] = ref
                self._callback(DeviceEvent(Action.ADD, ref))

    def _run(self) -> None:
        try:
            fd = os.open(self._mountinfo, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.error("mount_watch_failed", error=str(exc))
            return
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            while not self._stop.is_set():
                # the kernel flags a change of the mount table as POLLPRI|POLLERR on this fd
                if poller.poll(500):
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.read(fd, 1 << 16)  # acknowledges the change for the next poll
                    self.rescan()
        finally:
            os.close(fd)
