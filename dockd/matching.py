"""Device matching is data: rules from each driver's packaged match file plus an
administrator's drop-ins (`/etc/dockd/drivers.d/*.toml`). The most specific rule wins.

Format (docs/drivers.md):

    [[match]]
    driver = "netco"
    bus = "usb"                  # usb (default) | volume | folder
    vendor_id = 0x1209           # usb: required; volume: the USB device behind it
    product_id = 0xDC01          # optional
    interface_class = 0xFF       # usb, optional
    serial_pattern = "^NC-.*$"   # optional, full match (usb serial)
    fs_label_pattern = "^BWC"    # volume: filesystem label, full match
    fs_uuid = "..."              # volume: filesystem UUID
    fs_type = "vfat"             # volume: filesystem type
    root = "/srv/export"         # folder: each sub-folder of it is a camera
    # disabled = true            # a drop-in may switch a packaged rule off
    [match.options]              # handed to the driver as it is (its README says which)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.errors import ConfigError
from dockd.events import AnyRef

BUSES = ("usb", "volume", "folder")
_COMMON = {"driver", "bus", "disabled", "options"}
_KEYS = {
    "usb": _COMMON | {"vendor_id", "product_id", "interface_class", "serial_pattern"},
    "volume": _COMMON | {"vendor_id", "product_id", "serial_pattern", "fs_label_pattern",
                         "fs_uuid", "fs_type"},
    "folder": _COMMON | {"root"},
}
_MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class MatchRule:
    driver: str
    vendor_id: int | None = None
    product_id: int | None = None
    interface_class: int | None = None
    serial_pattern: re.Pattern[str] | None = None
    disabled: bool = False
    source: str = "?"
    bus: str = "usb"
    fs_label_pattern: re.Pattern[str] | None = None
    fs_uuid: str | None = None
    fs_type: str | None = None
    root: str | None = None
    #: driver-specific settings, handed to `open_session` as they are
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def specificity(self) -> int:
        """More constrained rules win: a filesystem UUID > a serial or a label > an
        interface class > a product id or filesystem type > a vendor id or a root."""
        return (
            (16 if self.fs_uuid is not None else 0)
            + (8 if self.serial_pattern is not None else 0)
            + (8 if self.fs_label_pattern is not None else 0)
            + (4 if self.interface_class is not None else 0)
            + (2 if self.product_id is not None else 0)
            + (2 if self.fs_type is not None else 0)
            + 1
        )

    def matches(self, dev: AnyRef) -> bool:
        if dev.bus != self.bus:
            return False
        if self.bus == "folder":
            return self.root is not None and Path(self.root) == Path(dev.properties()["root"])
        props = dev.properties()
        if self.vendor_id is not None and props.get("vendor_id") != f"{self.vendor_id:04x}":
            return False
        if self.product_id is not None and props.get("product_id") != f"{self.product_id:04x}":
            return False
        # under some emulations interfaces are not visible before the device is opened;
        # a rule asking for a class then matches only when the classes are known
        if self.interface_class is not None and self.interface_class not in getattr(
                dev, "interface_classes", ()):
            return False
        for pattern, key in ((self.serial_pattern, "serial"),
                             (self.fs_label_pattern, "fs_label")):
            if pattern is not None and (key not in props
                                        or pattern.fullmatch(props[key]) is None):
                return False
        if self.fs_uuid is not None and props.get("fs_uuid", "").lower() != self.fs_uuid:
            return False
        return self.fs_type is None or props.get("fs_type") == self.fs_type

    def _target(self) -> tuple[object, ...]:
        return (self.bus, self.vendor_id, self.product_id, self.interface_class,
                self.serial_pattern.pattern if self.serial_pattern else None,
                self.fs_label_pattern.pattern if self.fs_label_pattern else None,
                self.fs_uuid, self.fs_type, self.root)

    def same_target(self, other: MatchRule) -> bool:
        return self._target() == other._target()


def _int_field(path: str, where: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ConfigError(path, where, f"must be an integer from 0 to 0x{(1 << bits) - 1:X}")
    return value


def _pattern(source: str, where: str, raw: object) -> re.Pattern[str]:
    if not isinstance(raw, str) or len(raw) > 256:
        raise ConfigError(source, where, "must be a short string")
    try:
        return re.compile(raw)
    except re.error as exc:
        raise ConfigError(source, where, f"bad regex: {exc}") from None


def _text(source: str, where: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        raise ConfigError(source, where, "must be a non-empty string")
    return raw


def _options(source: str, where: str, raw: object) -> dict[str, Any]:
    """Driver options: scalars and lists of scalars only (TOML gives nothing executable)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, where, "must be a table: [match.options]")
    for key, value in raw.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float | bool) for v in items):
            raise ConfigError(source, f"{where}.{key}", "must be a string, number, boolean "
                              "or a list of them")
    return dict(raw)


def _rule(source: str, where: str, entry: dict[str, Any]) -> MatchRule:
    bus = entry.get("bus", "usb")
    if bus not in BUSES:
        raise ConfigError(source, f"{where}.bus", "must be one of " + ", ".join(BUSES))
    unknown = set(entry) - _KEYS[bus]
    if unknown:
        raise ConfigError(source, f"{where}.{sorted(unknown)[0]}",
                          f"unknown key (for bus = \"{bus}\")")
    driver = entry.get("driver")
    if not isinstance(driver, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", driver):
        raise ConfigError(source, f"{where}.driver", "must be a driver name like \"netco\"")
    if bus == "usb" and "vendor_id" not in entry:
        raise ConfigError(source, f"{where}.vendor_id", "is required")
    if bus == "folder" and "root" not in entry:
        raise ConfigError(source, f"{where}.root", "is required: the export folder whose "
                          "sub-folders are cameras")
    if bus == "volume" and not set(entry) & {"vendor_id", "fs_label_pattern", "fs_uuid"}:
        raise ConfigError(source, where, "a volume rule needs vendor_id, fs_label_pattern "
                          "or fs_uuid (a type alone would take every disk)")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(source, f"{where}.disabled", "must be true or false")
    root = _text(source, f"{where}.root", entry["root"]) if "root" in entry else None
    if root is not None and not Path(root).is_absolute():
        raise ConfigError(source, f"{where}.root", "must be an absolute path")
    return MatchRule(
        driver=driver,
        bus=bus,
        vendor_id=(_int_field(source, f"{where}.vendor_id", entry["vendor_id"], 16)
                   if "vendor_id" in entry else None),
        product_id=(_int_field(source, f"{where}.product_id", entry["product_id"], 16)
                    if "product_id" in entry else None),
        interface_class=(_int_field(source, f"{where}.interface_class",
                                    entry["interface_class"], 8)
                         if "interface_class" in entry else None),
        serial_pattern=(_pattern(source, f"{where}.serial_pattern", entry["serial_pattern"])
                        if "serial_pattern" in entry else None),
        fs_label_pattern=(_pattern(source, f"{where}.fs_label_pattern",
                                   entry["fs_label_pattern"])
                          if "fs_label_pattern" in entry else None),
        fs_uuid=(_text(source, f"{where}.fs_uuid", entry["fs_uuid"]).lower()
                 if "fs_uuid" in entry else None),
        fs_type=_text(source, f"{where}.fs_type", entry["fs_type"]) if "fs_type" in entry
        else None,
        root=root,
        options=_options(source, f"{where}.options", entry.get("options", {})),
        disabled=disabled,
        source=source,
    )  # fmt: skip


def parse_rules(text: str, source: str) -> list[MatchRule]:
    """Parse one match file. Errors name the file and the key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"not valid TOML: {exc}") from None
    extra = set(doc) - {"match"}
    if extra:
        raise ConfigError(source, sorted(extra)[0], "unknown key (expected only [[match]] tables)")
    entries = doc.get("match", [])
    if not isinstance(entries, list):
        raise ConfigError(source, "match", "must be an array of tables: [[match]]")
    rules = []
    for i, entry in enumerate(entries):
        where = f"match[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(source, where, "must be a table")
        rules.append(_rule(source, where, entry))
    return rules


def load_dropins(directory: Path) -> list[MatchRule]:
    """Read `*.toml` in lexical order; a missing directory is no error."""
    rules: list[MatchRule] = []
    if not directory.is_dir():
        return rules
    for path in sorted(directory.glob("*.toml")):
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                raise ConfigError(path, None, "file is larger than 1 MiB")
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(path, None, "not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(path, None, f"cannot read: {exc.strerror}") from None
        rules.extend(parse_rules(text, str(path)))
    return rules


@dataclass(frozen=True)
class Matcher:
    rules: tuple[MatchRule, ...]

    @classmethod
    def build(cls, packaged: Iterable[MatchRule], dropins: Iterable[MatchRule],
              known_drivers: Iterable[str]) -> Matcher:
        """Drop-ins come after packaged rules: a drop-in with `disabled = true` removes the
        packaged rule with the same target; a drop-in naming an unknown driver is an error."""
        known = set(known_drivers)
        rules = list(packaged)
        for rule in dropins:
            if rule.driver not in known:
                raise ConfigError(rule.source, "driver",
                                  f"no installed driver is called {rule.driver!r}")
            if rule.disabled:
                rules = [r for r in rules if not (r.same_target(rule) and r.driver == rule.driver)]
            else:
                rules.append(rule)
        return cls(tuple(r for r in rules if not r.disabled))

    def buses(self) -> set[str]:
        """The buses some rule matches on: which watchers the daemon needs."""
        return {r.bus for r in self.rules}

    def folder_roots(self) -> list[tuple[str, str]]:
        """(root, driver) of every folder rule: the export folders to watch."""
        return sorted({(r.root, r.driver) for r in self.rules if r.root is not None})

    def match(self, dev: AnyRef) -> MatchRule | None:
        """The most specific matching rule; among equals, the later one (drop-ins)."""
        best: MatchRule | None = None
        for rule in self.rules:
            if rule.matches(dev) and (best is None or rule.specificity >= best.specificity):
                best = rule
        return best
