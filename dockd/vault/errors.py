"""The vault's typed errors: one line each, written for the person who must act on it.

Messages name what failed and which object, and say what to do; they never carry a
credential or a traceback. `retryable` tells the caller whether the same call may succeed
later without anyone changing anything.
"""

from __future__ import annotations

from dockd.errors import DockdError


class VaultError(DockdError):
    """Something went wrong talking to the S3 vault. Subclasses say what."""

    exit_code = 9
    #: a short stable word for catalogs, logs and health findings
    kind: str = "vault"
    #: True when trying the same operation again may succeed
    retryable: bool = False
    #: the S3 error code behind it, when the server gave one (for logs, not for people)
    code: str = ""


class VaultUnreachable(VaultError):
    """No answer, a broken connection, a timeout or a 5xx: the network or the server."""

    kind = "unreachable"
    retryable = True


class VaultRefused(VaultError):
    """The server said no: bad credentials, access denied, a locked version, clock skew."""

    kind = "refused"


class VaultMisconfigured(VaultError):
    """The bucket is not fit for evidence: missing, no Object Lock, retention too short."""

    kind = "misconfigured"


class VaultIntegrityError(VaultError):
    """Bytes in the vault (or on their way there) do not match the hash they must have."""

    kind = "integrity"


class VaultObjectMissing(VaultIntegrityError):
    """A key/version that should be in the vault is not there."""

    kind = "missing"
