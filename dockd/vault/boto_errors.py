"""botocore's exceptions → the vault's typed errors, each one line with what to do.

The server's own message is not trusted to be short or free of request details, so the
line is built from its error *code* and HTTP status; known credential strings are
scrubbed from it all the same.
"""

from __future__ import annotations

from typing import Any, Final

from dockd.vault.errors import (
    VaultError,
    VaultIntegrityError,
    VaultMisconfigured,
    VaultObjectMissing,
    VaultRefused,
    VaultUnreachable,
)

_AUTH: Final = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AllAccessDisabled",
    "InvalidToken", "ExpiredToken", "AccountProblem", "InvalidSecurity", "403", "Forbidden",
    "Unauthorized", "401",
})
_CLOCK: Final = frozenset({"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"})
_INTEGRITY: Final = frozenset({
    "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum",
    "InvalidPart",
})
_NO_BUCKET: Final = frozenset({"NoSuchBucket"})
_NO_LOCK: Final = frozenset({"ObjectLockConfigurationNotFoundError", "InvalidBucketState"})
_MISSING: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_BUSY: Final = frozenset({
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestTimeoutException", "OperationAborted",
})


def client_error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    error = response.get("Error") or {}
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


def _status(exc: BaseException) -> int:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata") or {}
        if isinstance(meta, dict):
            return int(meta.get("HTTPStatusCode") or 0)
    return 0


def map_error(exc: BaseException, *, endpoint: str, doing: str, what: str,
              secrets: tuple[str, ...] = ()) -> VaultError | None:
    """The VaultError for a botocore exception, or None when `exc` is not botocore's."""
    from botocore import exceptions as bx  # noqa: PLC0415 - botocore is optional (vault extra)

    err: VaultError | None = None
    where = f"vault {endpoint}: {doing} {what}"
    if isinstance(exc, bx.ClientError):
        err = _from_code(client_error_code(exc), _status(exc), where)
    elif isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        err = VaultRefused(f"{where}: no credentials were given; set vault.credentials_file")
    elif isinstance(exc, bx.ConnectTimeoutError | bx.EndpointConnectionError):
        # botocore also reports a connection dropped while sending a body this way
        err = VaultUnreachable(f"{where}: cannot connect, or the connection dropped; check "
                               "the network and that the vault is up (the operation can be "
                               "retried)")
    elif isinstance(exc, bx.ReadTimeoutError):
        err = VaultUnreachable(f"{where}: no answer in time; the vault or the link is slow "
                               "or down (the operation can be retried)")
    elif isinstance(exc, bx.ConnectionError | bx.HTTPClientError | bx.IncompleteReadError
                    | bx.ResponseStreamingError):
        err = VaultUnreachable(f"{where}: the connection broke ({type(exc).__name__}); "
                               "the operation can be retried")
    elif isinstance(exc, bx.ParamValidationError):
        err = VaultError(f"{where}: dockd built an invalid request ({_first_line(exc)}); "
                         "this is a bug, please report it")
    elif isinstance(exc, bx.BotoCoreError):
        err = VaultError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")
    if err is not None:
        err.args = (_scrub(str(err), secrets),)
    return err


def _from_code(code: str, status: int, where: str) -> VaultError:
    if code in _CLOCK:
        return VaultRefused(f"{where}: request time rejected ({code}): this machine's clock "
                            "is off from the vault's by more than the signature allows "
                            "(15 minutes on S3); fix the time (NTP) and retry")
    if code in ("403", "Forbidden"):  # a HEAD's 403 has no body to say why
        return VaultRefused(f"{where}: refused (HTTP 403 without a reason): check the vault "
                            "credentials, the key's permissions, and this machine's clock")
    if code in _AUTH:
        return VaultRefused(f"{where}: refused ({code}): check the access key and secret in "
                            "the vault credentials and the key's permissions on the bucket")
    if code in _INTEGRITY:
        return VaultIntegrityError(f"{where}: the vault refused the bytes ({code}): they do "
                                   "not match the SHA-256 sent with them; the local file "
                                   "changed or is damaged — do not delete it, check it")
    if code in _NO_BUCKET:
        return VaultMisconfigured(f"{where}: the bucket does not exist ({code}); create it "
                                  "with Object Lock enabled, or fix vault.bucket")
    if code in _NO_LOCK:
        return VaultMisconfigured(f"{where}: the bucket has no Object Lock ({code}); "
                                  "evidence needs a bucket created with Object Lock enabled")
    if code in _MISSING:
        return VaultObjectMissing(f"{where}: no such object or version in the vault ({code})")
    if code in _BUSY or status >= 500:
        return VaultUnreachable(f"{where}: the vault failed or is busy ({code or status}); "
                                "the operation can be retried")
    if code == "InvalidRequest":
        return VaultMisconfigured(f"{where}: the vault rejected the request ({code}), e.g. "
                                  "an Object Lock header on a bucket without Object Lock or "
                                  "a retain-until date in its past (check both clocks)")
    return VaultError(f"{where}: the vault answered {code or 'an error'} (HTTP {status})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text)[:300] if text else type(exc).__name__


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())
