"""The folder driver's options: the `[match.options]` table of the rule that matched."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockd.errors import ConfigError

DEFAULT_PATTERNS = ("*.mp4", "*.mov", "*.avi", "*.mkv", "*.mts", "*.wav")
#: where the camera's serial comes from, in order, unless `serial_from` says otherwise
SERIAL_SOURCES = ("usb", "label", "uuid", "folder")
_KEYS = {"patterns", "case_sensitive", "hash_suffix", "complete_suffix", "settle_s", "subdir",
         "serial_from", "serial_prefix", "vendor", "model", "max_depth", "max_entries"}


@dataclass(frozen=True)
class FolderOptions:
    #: file name patterns (fnmatch, on the last part of the path) that are recordings
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    case_sensitive: bool = False
    #: `<recording><hash_suffix>` holds the vendor's SHA-256 of the recording (hex)
    hash_suffix: str | None = None
    #: a recording counts only once `<recording><complete_suffix>` exists
    complete_suffix: str | None = None
    #: a file modified less than this long ago may still be written: not taken yet
    settle_s: float = 5.0
    #: the recordings live under this sub-folder of the volume (e.g. "DCIM")
    subdir: str = ""
    serial_from: tuple[str, ...] = SERIAL_SOURCES
    serial_prefix: str = ""
    vendor: str = "unknown"
    model: str = "mass storage"
    max_depth: int = 8
    #: a tree with more entries than this is refused (a hostile or broken volume)
    max_entries: int = 100_000

    def is_recording(self, name: str) -> bool:
        folded = name if self.case_sensitive else name.lower()
        return any(fnmatch.fnmatchcase(folded, p if self.case_sensitive else p.lower())
                   for p in self.patterns)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError("folder driver options", key, "must be a string or a list of them")
    return tuple(items)


def _suffix(value: Any, key: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\.[A-Za-z0-9._-]{1,32}", value):
        raise ConfigError("folder driver options", key,
                          'must be a file suffix like ".sha256"')
    return value


def parse_options(raw: Mapping[str, Any] | None) -> FolderOptions:
    """Checked options; a bad one is a ConfigError naming the key."""
    raw = dict(raw or {})
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError("folder driver options", sorted(unknown)[0], "unknown option")
    opts: dict[str, Any] = {}
    if "patterns" in raw:
        opts["patterns"] = _strings(raw["patterns"], "patterns")
    if "case_sensitive" in raw:
        if not isinstance(raw["case_sensitive"], bool):
            raise ConfigError("folder driver options", "case_sensitive", "must be true or false")
        opts["case_sensitive"] = raw["case_sensitive"]
    for key in ("hash_suffix", "complete_suffix"):
        if key in raw:
            opts[key] = _suffix(raw[key], key)
    if "settle_s" in raw:
        value = raw["settle_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 <= value <= 86_400):
            raise ConfigError("folder driver options", "settle_s",
                              "must be a number of seconds from 0 to 86400")
        opts["settle_s"] = float(value)
    if "subdir" in raw:
        subdir = raw["subdir"]
        if not isinstance(subdir, str) or any(p in ("", ".", "..") for p in subdir.split("/")):
            raise ConfigError("folder driver options", "subdir",
                              "must be a relative path without '.' or '..' parts")
        opts["subdir"] = subdir
    if "serial_from" in raw:
        sources = _strings(raw["serial_from"], "serial_from")
        if not set(sources) <= set(SERIAL_SOURCES):
            raise ConfigError("folder driver options", "serial_from",
                              "must name some of " + ", ".join(SERIAL_SOURCES))
        opts["serial_from"] = sources
    for key in ("serial_prefix", "vendor", "model"):
        if key in raw:
            opts[key] = _strings(raw[key], key)[0]
    for key, high in (("max_depth", 64), ("max_entries", 10_000_000)):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigError("folder driver options", key,
                                  f"must be an integer from 1 to {high}")
            opts[key] = value
    return FolderOptions(**opts)
