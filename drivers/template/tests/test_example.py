"""The test skeleton a new vendor copies with the template (rename `example` → yours).

These pass as shipped: they check what the core relies on before a line of protocol is
written — the driver registers, its match data parses and routes its device to it, and a
session that is not written yet says so with a typed error. Add your codec round trips,
hostile-input cases and session tests beside them (drivers/netco/tests shows how).
"""

from __future__ import annotations

import dataclasses

import pytest
from dockd_example import DRIVER

from dockd.errors import DeviceError, Unsupported
from dockd.events import UsbDeviceRef
from dockd.matching import Matcher, parse_rules
from dockd.registry import DriverRegistry


def test_the_driver_is_registered_through_its_entry_point() -> None:
    registry = DriverRegistry.discover()
    assert registry.get(DRIVER.name) is DRIVER


def test_its_match_data_parses_and_routes_its_device_to_it() -> None:
    rules = parse_rules(DRIVER.match_data().read_text(encoding="utf-8"), "example:match.toml")
    assert rules and all(r.driver == DRIVER.name for r in rules)
    # the template ships its rule switched off (it must match nothing until the IDs are
    # yours): delete `disabled = true` in match.toml, then this line
    rule = dataclasses.replace(rules[0], disabled=False)
    assert rule.vendor_id is not None
    device = UsbDeviceRef(key="k", port_path="1-1.2", bus_number=1, address=9,
                          vendor_id=rule.vendor_id, product_id=rule.product_id or 0,
                          interface_classes=(rule.interface_class or 0xFF,))
    matched = Matcher.build([rule], [], [DRIVER.name]).match(device)
    assert matched is not None and matched.driver == DRIVER.name


def test_an_unwritten_session_says_so_with_a_typed_error() -> None:
    with pytest.raises(Unsupported) as raised:
        DRIVER.open_session(object(), timeout_s=1.0, options={})
    assert isinstance(raised.value, DeviceError) and "not written yet" in str(raised.value)
