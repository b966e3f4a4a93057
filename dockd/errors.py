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


# --- storage and encryption (appended by the storage/crypto part) ---------------------


class StorageError(DockdError):
    """The evidence store could not save or read a file. Names the path."""

    exit_code = 4
    #: True when trying the same operation again may succeed
    retryable: bool = True


class StoreFull(StorageError):
    """The store's filesystem is full (ENOSPC/EDQUOT). Permanent for this attempt."""

    retryable = False


class StoreExists(StorageError):
    """The final path is already taken: the store never overwrites a file."""

    retryable = False


class CryptoError(DockdError):
    """Encryption or decryption failed. Subclasses say what."""

    exit_code = 5


class KeyFormatError(CryptoError):
    """An age recipient or identity string is malformed (names what is wrong)."""


class AgeFormatError(CryptoError):
    """An age file is malformed: bad header, bad stanza, bad encoding."""


class NoIdentityMatched(CryptoError):
    """None of the given identities can unwrap the file key of an age file."""


class AuthenticationFailed(CryptoError):
    """A header MAC or payload chunk tag does not verify: the file was altered or damaged."""


class TruncatedFile(AuthenticationFailed):
    """An age file ends before its final chunk, or has bytes after it."""


# --- catalog --------------------------------------------------------------------


class CatalogError(DockdError):
    """The catalog cannot be opened or used as asked (unreadable, wrong version, bad state)."""

    exit_code = 8


class CatalogVersionError(CatalogError):
    """The catalog is newer than this dockd, or not a dockd catalog: refuse, touch nothing."""


class CatalogUnavailable(CatalogError):
    """The catalog's server could not be reached or dropped the connection (PostgreSQL
    restarted, a network cut): the work is tried again once it answers. A transaction cut
    off at its COMMIT may or may not have happened; the write order makes either safe."""


class RecordingStateError(CatalogError):
    """A recording status change that would break the write order (e.g. delete before verify)."""


class LeaseLost(RecordingStateError):
    """A writer no longer holds its recording's lease (another session took it over): it
    must write, publish and record nothing more for that recording."""


class LeaseHeld(DockdError):
    """Another live session holds the recording's lease: this one waits or leaves it on the
    camera, and never touches the other's files."""


# --- the daemon's overall outcome -----------------------------------------------------


class IncompleteIngest(DockdError):
    """`dockd run --once`: some listed recording is not stored and verified (see the log's
    dock_session lines and `dockctl recordings`)."""

    exit_code = 6


# --- dockctl (appended by the dockctl part) -------------------------------------------


class VerifyFailed(DockdError):
    """`dockctl verify`/`audit`: a stored file, its hashes or the audit chain failed a check.
    The message names every failure."""

    exit_code = 7
