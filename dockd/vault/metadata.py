"""User metadata (`x-amz-meta-*`) is sent as HTTP headers: printable ASCII only.

Values are percent-escaped (UTF-8) beyond printable ASCII, and `%` and space are escaped
too, so any string survives the trip and `decode_metadata` gives it back exactly; a value
that is plain ASCII without those two stays readable as it is. Keys are a caller's
constants: a bad one is a bug (ValueError), not something to escape.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, unquote

#: AWS counts key + value bytes of all user metadata against 2 KiB
MAX_METADATA_BYTES: Final = 2048
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
_SAFE = "".join(c for c in string.printable if c.isprintable() and c not in "% ")


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not _KEY.match(key):
            raise ValueError(f"metadata key {key!r}: use lowercase a-z, 0-9, '-', '_', '.'")
        out[key] = quote(value, safe=_SAFE, encoding="utf-8", errors="strict")
    total = sum(len(k) + len(v) for k, v in out.items())
    if total > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {total} bytes once escaped; S3 allows "
                         f"{MAX_METADATA_BYTES}")
    return out


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: unquote(v, encoding="utf-8", errors="replace") for k, v in metadata.items()}
