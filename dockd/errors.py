"""Typed errors. Every failure dockd reports is one of these; exit codes live on the classes.

Device errors carry what a technician needs to act on them (serial, slot); the message
is written for a person, not for a developer.
"""

from __future__ import annotations


class DockdError(Exception):
    """Base of every error dockd raises on purpose."""

    exit_code: int = 1


# --- configuration and input files -------------------------------------------------


class ConfigError(DockdError):
    """A config, scenario or drivers.d file is wrong. Names the file and key or line."""

    exit_code = 2

    def __init__(self, path: object, where: str | None, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        location = f"{self.path}: {where}" if where else self.path
        super().__init__(f"{location}: {problem}")


# --- devices --------------------------------------------------------------------


class DeviceError(DockdError):
    """Something went wrong talking to a camera. Subclasses say what."""

    exit_code = 3
    #: a short stable word for catalogs, logs and health findings
    kind: str = "device"
    #: True when trying the same operation again may succeed
    retryable: bool = True


class DeviceGone(DeviceError):
    """The camera disappeared (unplugged, reset, powered off)."""

    kind = "gone"


class DeviceTimeout(DeviceError):
    """The camera did not answer within the allowed time."""

    kind = "timeout"


class ProtocolError(DeviceError):
    """The camera sent bytes that break the protocol: bad CRC, impossible length, bad name..."""

    kind = "protocol"


class DeviceRefused(DeviceError):
    """The camera answered with an error status (e.g. a flash read error)."""

    kind = "refused"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IntegrityError(DeviceError):
    """Bytes do not match the hash they must have."""

    kind = "integrity"


class Unsupported(DeviceError):
    """The camera or driver cannot do the asked operation."""

    kind = "unsupported"
    retryable = False


class NoDriver(DockdError):
    """No installed driver matches a device."""

    exit_code = 3
