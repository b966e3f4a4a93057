"""Device matching is data: rules from each driver's packaged match file plus an
administrator's drop-ins (`/etc/dockd/drivers.d/*.toml`). The most specific rule wins.

Format (docs/drivers.md):

    [[match]]
    driver = "netco"
    vendor_id = 0x1209
    product_id = 0xDC01          # optional
    interface_class = 0xFF       # optional
    serial_pattern = "^NC-.*$"   # optional, full match
    # disabled = true            # a drop-in may switch a packaged rule off
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import ConfigError
from dockd.events import UsbDeviceRef

_KEYS = {"driver", "vendor_id", "product_id", "interface_class", "serial_pattern", "disabled"}
_MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class MatchRule:
    driver: str
    vendor_id: int
    product_id: int | None = None
    interface_class: int | None = None
    serial_pattern: re.Pattern[str] | None = None
    disabled: bool = False
    source: str = "?"

    @property
    def specificity(self) -> int:
        """More constrained rules win: serial > interface class > product id > vendor id."""
        return (
            (8 if self.serial_pattern is not None else 0)
            + (4 if self.interface_class is not None else 0)
            + (2 if self.product_id is not None else 0)
            + 1
        )

    def matches(self, dev: UsbDeviceRef) -> bool:
        if dev.vendor_id != self.vendor_id:
            return False
        if self.product_id is not None and dev.product_id != self.product_id:
            return False
        # under some emulations interfaces are not visible before the device is opened;
        # a rule asking for a class then matches only when the classes are known
        if self.interface_class is not None and self.interface_class not in dev.interface_classes:
            return False
        if self.serial_pattern is not None:
            return dev.serial is not None and self.serial_pattern.fullmatch(dev.serial) is not None
        return True

    def same_target(self, other: MatchRule) -> bool:
        return (self.vendor_id, self.product_id, self.interface_class,
                self.serial_pattern.pattern if self.serial_pattern else None) == (
                other.vendor_id, other.product_id, other.interface_class,
                other.serial_pattern.pattern if other.serial_pattern else None)  # fmt: skip


def _int_field(path: str, where: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ConfigError(path, where, f"must be an integer from 0 to 0x{(1 << bits) - 1:X}")
    return value


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
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(source, f"{where}.{sorted(unknown)[0]}", "unknown key")
        driver = entry.get("driver")
        if not isinstance(driver, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", driver):
            raise ConfigError(source, f"{where}.driver", "must be a driver name like \"netco\"")
        if "vendor_id" not in entry:
            raise ConfigError(source, f"{where}.vendor_id", "is required")
        pattern = None
        if "serial_pattern" in entry:
            raw = entry["serial_pattern"]
            if not isinstance(raw, str) or len(raw) > 256:
                raise ConfigError(source, f"{where}.serial_pattern", "must be a short string")
            try:
                pattern = re.compile(raw)
            except re.error as exc:
                raise ConfigError(source, f"{where}.serial_pattern", f"bad regex: {exc}") from None
        disabled = entry.get("disabled", False)
        if not isinstance(disabled, bool):
            raise ConfigError(source, f"{where}.disabled", "must be true or false")
        rules.append(MatchRule(
            driver=driver,
            vendor_id=_int_field(source, f"{where}.vendor_id", entry["vendor_id"], 16),
            product_id=(_int_field(source, f"{where}.product_id", entry["product_id"], 16)
                        if "product_id" in entry else None),
            interface_class=(_int_field(source, f"{where}.interface_class",
                                        entry["interface_class"], 8)
                             if "interface_class" in entry else None),
            serial_pattern=pattern,
            disabled=disabled,
            source=source,
        ))  # fmt: skip
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

    def match(self, dev: UsbDeviceRef) -> MatchRule | None:
        """The most specific matching rule; among equals, the later one (drop-ins)."""
        best: MatchRule | None = None
        for rule in self.rules:
            if rule.matches(dev) and (best is None or rule.specificity >= best.specificity):
                best = rule
        return best
