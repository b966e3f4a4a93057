"""The `[vault]` table: where evidence goes off-site, and with which credentials.

Validated before anything connects; each problem is one ConfigError naming the key.
Credentials come from a file only this user can read (mode 0600, owned by us) or from the
environment, and are wrapped in `Secret` so no repr, str, log line or asdict() shows them.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from dockd.errors import ConfigError

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
LOCK_MODES: Final = ("COMPLIANCE", "GOVERNANCE")

ENV_ACCESS_KEY: Final = "DOCKD_VAULT_ACCESS_KEY"
ENV_SECRET_KEY: Final = "DOCKD_VAULT_SECRET_KEY"  # noqa: S105 - a variable name

#: S3 refuses parts under 5 MiB (except the last) and over 5 GiB
MIN_PART_MIB: Final = 5
MAX_PART_MIB: Final = 5 * 1024

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_KNOWN = ("endpoint", "bucket", "region", "prefix", "lock_mode", "part_mib",
          "credentials_file", "connect_timeout_s", "read_timeout_s", "max_attempts")


class Secret:
    """A credential string that prints as `***` everywhere; `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


@dataclass(frozen=True)
class VaultSettings:
    endpoint: str
    bucket: str
    access_key: Secret = field(repr=False)
    secret_key: Secret = field(repr=False)
    region: str = "us-east-1"
    #: prepended to every key given to the client (e.g. "site-a/")
    prefix: str = ""
    lock_mode: LockMode = "COMPLIANCE"
    #: files larger than this go up as a multipart upload in parts of this size
    part_mib: int = 64
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    #: botocore "standard" retry mode: total attempts per request, first one included
    max_attempts: int = 3

    def __post_init__(self) -> None:
        # parse_vault_settings says which key is wrong; this only stops a bad direct build
        if self.lock_mode not in LOCK_MODES:
            raise ValueError(f"lock_mode must be one of {LOCK_MODES}")
        if not MIN_PART_MIB <= self.part_mib <= MAX_PART_MIB:
            raise ValueError(f"part_mib must be between {MIN_PART_MIB} and {MAX_PART_MIB}")

    @property
    def part_bytes(self) -> int:
        return self.part_mib << 20


def parse_vault_settings(table: Mapping[str, object], source: str,
                         environ: Mapping[str, str] | None = None) -> VaultSettings:
    """Check the `[vault]` table of `source` and load the credentials it names.

    Raises ConfigError(source, "vault.<key>", problem) for the first bad key."""
    env = os.environ if environ is None else environ
    for key in table:
        if key not in _KNOWN:
            raise ConfigError(source, f"vault.{key}", f"unknown key (known: {', '.join(_KNOWN)})")

    def where(key: str) -> str:
        return f"vault.{key}"

    def text(key: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise ConfigError(source, where(key), "is required")
        if not isinstance(value, str):
            raise ConfigError(source, where(key), "must be a string")
        return value

    def number(key: str, default: float, lo: float, hi: float, *, whole: bool) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, where(key), "must be a number")
        if whole and not isinstance(value, int):
            raise ConfigError(source, where(key), "must be a whole number")
        if not lo <= value <= hi:
            raise ConfigError(source, where(key), f"must be between {lo:g} and {hi:g}")
        return value

    endpoint = _check_endpoint(text("endpoint"), source)
    bucket = text("bucket")
    if not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise ConfigError(source, where("bucket"), "is not a valid S3 bucket name "
                          "(3-63 characters: a-z, 0-9, '.', '-', starting and ending with "
                          "a letter or digit)")
    region = text("region", "us-east-1")
    if not _REGION.match(region):
        raise ConfigError(source, where("region"), "must be a region name like us-east-1")
    prefix = text("prefix", "")
    if prefix.startswith("/") or any(p in (".", "..") for p in prefix.split("/")) \
            or not prefix.isprintable():
        raise ConfigError(source, where("prefix"), "must be a relative key prefix like "
                          "'site-a/' (no leading '/', no '.' or '..' parts, printable)")
    lock_mode = text("lock_mode", "COMPLIANCE")
    if lock_mode not in LOCK_MODES:
        raise ConfigError(source, where("lock_mode"), "must be COMPLIANCE or GOVERNANCE")
    part_mib = int(number("part_mib", 64, MIN_PART_MIB, MAX_PART_MIB, whole=True))
    connect_timeout = number("connect_timeout_s", 5.0, 0.1, 300, whole=False)
    read_timeout = number("read_timeout_s", 30.0, 0.1, 3600, whole=False)
    attempts = int(number("max_attempts", 3, 1, 20, whole=True))

    if "credentials_file" in table:
        access, secret = read_credentials_file(Path(text("credentials_file")), source)
    else:
        access, secret = env.get(ENV_ACCESS_KEY, ""), env.get(ENV_SECRET_KEY, "")
        if not access or not secret:
            raise ConfigError(source, where("credentials_file"),
                              f"no credentials: set vault.credentials_file (a mode 0600 file) "
                              f"or both {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}")
    return VaultSettings(
        endpoint=endpoint, bucket=bucket, region=region, prefix=prefix,
        lock_mode="COMPLIANCE" if lock_mode == "COMPLIANCE" else "GOVERNANCE",
        part_mib=part_mib, connect_timeout_s=connect_timeout, read_timeout_s=read_timeout,
        max_attempts=attempts, access_key=Secret(access), secret_key=Secret(secret))


def _check_endpoint(value: str, source: str) -> str:
    where = "vault.endpoint"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(source, where, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(source, where, "must be an http(s) URL like https://s3.example:9000")
    if parts.username is not None or parts.password is not None:
        # never echo the value: it holds a credential
        raise ConfigError(source, where, "must not contain credentials: put them in "
                          "vault.credentials_file")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ConfigError(source, where, "must be scheme://host[:port] only (path-style "
                          "addressing: the bucket goes in vault.bucket)")
    return f"{parts.scheme}://{parts.netloc}"


def read_credentials_file(path: Path, source: str) -> tuple[str, str]:
    """(access_key, secret_key) from a file only this user can read.

    Accepted forms: JSON `{"access_key": …, "secret_key": …}` or two lines
    `access_key = …` / `secret_key = …` (blank lines and `#` comments allowed).
    The mode and owner are checked on the opened file, so a swap after the check is moot."""
    where = "vault.credentials_file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(source, where, f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(source, where, f"{path} is not a regular file")
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise ConfigError(source, where, f"{path} must be mode 0600 and owned by uid "
                              f"{os.geteuid()} (it is mode {stat.S_IMODE(st.st_mode):04o}, "
                              f"uid {st.st_uid}): run chmod 600 {path}; chown to the dockd user")
        raw = f.read(64 * 1024)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(source, where, f"{path} is not UTF-8 text") from None
    pairs = _parse_json(body) if body.lstrip().startswith("{") else _parse_lines(body)
    if pairs is None:
        raise ConfigError(source, where, f"{path}: expected `access_key = …` and "
                          "`secret_key = …` lines, or JSON with those two keys")
    access, secret = pairs.get("access_key", ""), pairs.get("secret_key", "")
    if set(pairs) - {"access_key", "secret_key"} or not access or not secret:
        raise ConfigError(source, where, f"{path} must hold exactly access_key and "
                          "secret_key, both non-empty")
    return access, secret


def _parse_json(body: str) -> dict[str, str] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # the message must not quote the file: it holds the secret
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        return None
    return {str(k): v for k, v in doc.items()}


def _parse_lines(body: str) -> dict[str, str] | None:
    pairs: dict[str, str] = {}
    for line in body.splitlines():
        line = line.strip()  # noqa: PLW2901 - the stripped line is the only one we need
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not eq:
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        name = name.strip()
        if name in pairs:
            return None
        pairs[name] = value
    return pairs
