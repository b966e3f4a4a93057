"""Bech32 (BIP 173, not bech32m) as age uses it for recipients and identities.

age does not apply BIP 173's 90-character limit; we cap at a generous length instead so a
hostile string cannot make us allocate much.
"""

from __future__ import annotations

from dockd.errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_REV = {c: i for i, c in enumerate(_CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_MAX_LEN = 1000


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or (acc << (tobits - bits)) & maxv:
        raise KeyFormatError("bech32: non-zero padding bits in the data part")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode data under a lowercase human-readable part; the caller picks the case."""
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """Return (lowercase hrp, data). Raises KeyFormatError saying what is wrong."""
    if len(text) > _MAX_LEN:
        raise KeyFormatError(f"bech32: string is too long ({len(text)} characters)")
    if not text.isascii() or any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise KeyFormatError("bech32: string contains non-printable or non-ASCII characters")
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32: string mixes upper and lower case")
    low = text.lower()
    sep = low.rfind("1")
    if sep < 1:
        raise KeyFormatError("bech32: missing human-readable part or separator '1'")
    if len(low) - sep - 1 < 6:
        raise KeyFormatError("bech32: too short to hold a checksum")
    hrp, rest = low[:sep], low[sep + 1 :]
    bad = sorted({c for c in rest if c not in _REV})
    if bad:
        raise KeyFormatError(f"bech32: invalid characters in the data part: {''.join(bad)!r}")
    values = [_REV[c] for c in rest]
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise KeyFormatError("bech32: bad checksum (a character is mistyped or missing)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
