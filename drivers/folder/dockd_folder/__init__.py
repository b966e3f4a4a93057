"""dockd driver for cameras that are a directory: a mass-storage camera the system mounted
(bus `volume`), or one camera's sub-folder of a vendor's export folder (bus `folder`).

No vendor protocol: the camera's files are read beneath its directory, checked like any
device bytes, and deleted after the core's proof. See README.md for the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from dockd.errors import Unsupported
from dockd.events import FolderRef, VolumeRef

if TYPE_CHECKING:
    from dockd_folder.session import FolderSession


class FolderDriver:
    """Implements `dockd.driver.Driver`."""

    name = "folder"
    vendor = "mass storage / export folder"

    def match_data(self) -> Traversable:
        return files("dockd_folder") / "match.toml"

    def open_session(self, device: Any, *, timeout_s: float,
                     options: Mapping[str, Any] | None = None) -> FolderSession:
        from dockd_folder.options import parse_options  # noqa: PLC0415
        from dockd_folder.session import FolderSession  # noqa: PLC0415

        if not isinstance(device, VolumeRef | FolderRef):
            raise Unsupported("the folder driver reads mounted volumes and export folders, "
                              "not USB devices: check the match rule's bus")
        return FolderSession(device, options=parse_options(options))


DRIVER = FolderDriver()

__all__ = ["DRIVER", "FolderDriver"]
