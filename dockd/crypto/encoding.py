"""Small primitives shared by the age modules: canonical unpadded base64 and HKDF-SHA-256."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockd.errors import AgeFormatError


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def b64encode(data: bytes) -> str:
    """Standard base64 without '=' padding, as age writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Decode unpadded base64; reject padding and non-canonical encodings (spec MUST)."""
    if "=" in text or "\r" in text or "\n" in text:
        raise AgeFormatError("base64 with padding or line breaks where age forbids them")
    if len(text) % 4 == 1:
        raise AgeFormatError("base64 of impossible length")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AgeFormatError(f"invalid base64: {exc}") from exc
    if b64encode(data) != text:  # non-zero trailing bits: non-canonical
        raise AgeFormatError("non-canonical base64")
    return data
