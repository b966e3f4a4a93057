"""Scenario files: the documented shape loads; every mistake names file, key and problem."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dockd_sim import scenario as scenario_mod
from dockd_sim.scenario import load_scenario
from dockd_sim.spec import FaultKind

from dockd.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

FULL = """
[dock]
name = "dock-a"
slots = 8

[[camera]]
serial = "NC-100234"
slot = 1
firmware = "3.2.1"
clock_offset_s = -95
dock_at_s = 0.0
undock_at_s = 12.5
link_mb_s = 40

[camera.battery]
soc_percent = 41
voltage_mv = 3790
temperature_c = 31.5
cycle_count = 412
design_capacity_mah = 3000
full_charge_capacity_mah = 2310

[[camera.recording]]
name = "20261125_140211_0017.MP4"
source = "clips/a.mp4"
started = "2026-11-25T14:02:11Z"
duration_s = 312
prerecord_s = 30

[[camera.recording]]
name_hex = "41 00 ff 2f"
size = 52428800
seed = 17
started = 2026-11-25T15:00:00+01:00

[[camera.fault]]
kind = "unplug"
recording = "20261125_140211_0017.MP4"
at_byte = 10485760
times = 1

[[camera.fault]]
kind = "slow"
times = "always"
delay_s = 0.2

[[camera.shift_sample]]
offset_s = -3600
soc_percent = 90
voltage_mv = 4100
current_ma = -350
temperature_c = 24.5

[[camera.shift_event]]
offset_s = -3500
kind = "record_start"

[[camera]]
serial = "NC-100234"   # the same serial on another slot: hostile, allowed
slot = 2
"""


def write(tmp_path: Path, text: str, *, clip: bool = True) -> Path:
    if clip:
        (tmp_path / "clips").mkdir(exist_ok=True)
        (tmp_path / "clips" / "a.mp4").write_bytes(b"\x00\x01" * 100)
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_full_shape_loads(tmp_path):
    s = load_scenario(write(tmp_path, FULL))
    assert s.dock.name == "dock-a" and s.dock.slots == 8 and s.dock.hub_port_path == "1-1"
    assert [c.slot for c in s.cameras] == [1, 2]
    assert s.cameras[0].serial == s.cameras[1].serial
    cam = s.cameras[0]
    assert cam.clock_offset_s == -95 and cam.undock_at_s == 12.5 and cam.link_mb_s == 40
    assert cam.battery.soc_percent == 41 and cam.battery.full_charge_capacity_mah == 2310
    # keys not given keep their defaults
    assert cam.battery.current_ma == 500
    first, second = cam.recordings
    assert first.name == b"20261125_140211_0017.MP4"
    assert first.source == tmp_path / "clips" / "a.mp4" and first.size is None
    assert first.started == datetime(2026, 11, 25, 14, 2, 11, tzinfo=UTC)
    assert first.duration_s == 312 and first.prerecord_s == 30
    assert second.name == b"A\x00\xff/"
    assert second.size == 52428800 and second.seed == 17 and second.source is None
    assert second.started == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    unplug, slow = cam.faults
    assert unplug.kind is FaultKind.UNPLUG and unplug.at_byte == 10485760 and unplug.times == 1
    assert unplug.recording == first.name
    assert slow.kind is FaultKind.SLOW and slow.times is None and slow.delay_s == 0.2
    assert cam.shift_samples[0].current_ma == -350
    assert cam.shift_events[0].kind == "record_start"
    assert s.cameras[1].recordings == () and s.cameras[1].undock_at_s is None


def test_minimal_scenario_defaults(tmp_path):
    s = load_scenario(write(tmp_path, '[[camera]]\nserial = "X"\nslot = 3\n', clip=False))
    assert s.dock.slots == 8 and s.cameras[0].dock_at_s == 0 and s.cameras[0].faults == ()


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_scenarios_load(path):
    s = load_scenario(path)
    assert s.cameras


CAM = '[[camera]]\nserial = "NC-1"\nslot = 1\n'
REC = '[[camera.recording]]\nname = "a.mp4"\nstarted = "2026-11-25T14:02:11Z"\n'

BAD = [
    # (scenario text, key in the message, part of the problem)
    ("", "camera", "at least one"),
    ("[dock]\nslots = 0\n" + CAM, "dock.slots", "from 1 to 255"),
    ("[dock]\nslots = 'eight'\n" + CAM, "dock.slots", "integer"),
    ("[dock]\nslots = true\n" + CAM, "dock.slots", "integer"),
    ("[dock]\ncolour = 'red'\n" + CAM, "dock.colour", "unknown key"),
    ("[dock]\nhub_port_path = 'usb1'\n" + CAM, "dock.hub_port_path", "port path"),
    ("[dock]\nbus = 2\nhub_port_path = '1-1'\n" + CAM, "dock.hub_port_path", "bus number"),
    ("dock = 3\n" + CAM, "dock", "must be a table"),
    ("camera = 3\n", "camera", "array of tables"),
    ("extra = 1\n" + CAM, "extra", "unknown key"),
    ('[[camera]]\nslot = 1\n', "camera[0].serial", "is required"),
    ('[[camera]]\nserial = ""\nslot = 1\n', "camera[0].serial", "must not be empty"),
    ('[[camera]]\nserial = 5\nslot = 1\n', "camera[0].serial", "must be a string"),
    (f'[[camera]]\nserial = "{"x" * 127}"\nslot = 1\n', "camera[0].serial", "too long"),
    ('[[camera]]\nserial = "A"\n', "camera[0].slot", "is required"),
    ('[[camera]]\nserial = "A"\nslot = 9\n', "camera[0].slot", "from 1 to dock.slots (8)"),
    ('[[camera]]\nserial = "A"\nslot = 0\n', "camera[0].slot", "from 1"),
    (CAM + CAM + 'colour = "red"\n', "camera[1].colour", "unknown key"),
    (CAM + "dock_at_s = -1\n", "camera[0].dock_at_s", ">= 0"),
    (CAM + "dock_at_s = 5\nundock_at_s = 4\n", "camera[0].undock_at_s", "before dock_at_s"),
    (CAM + "link_mb_s = -40\n", "camera[0].link_mb_s", ">= 0"),
    (CAM + "link_mb_s = nan\n", "camera[0].link_mb_s", ">= 0"),
    (CAM + "clock_offset_s = inf\n", "camera[0].clock_offset_s", "number"),
    (CAM + "clock_offset_s = '5'\n", "camera[0].clock_offset_s", "number"),
    (CAM + "redock_after_s = -1\n", "camera[0].redock_after_s", ">= 0"),
    (CAM + "battery = 5\n", "camera[0].battery", "must be a table"),
    (CAM + "[camera.battery]\nsoc_percent = 101\n", "camera[0].battery.soc_percent", "0 to 100"),
    (CAM + "[camera.battery]\nvoltage_mv = 3.7\n", "camera[0].battery.voltage_mv", "integer"),
    (CAM + "[camera.battery]\ncycle_count = -1\n", "camera[0].battery.cycle_count",
     "non-negative integer"),
    (CAM + "[camera.battery]\ncharging = 'maybe'\n", "camera[0].battery.charging", "one of"),
    (CAM + "[camera.battery]\nvolts = 4\n", "camera[0].battery.volts", "unknown key"),
    (CAM + REC, "camera[0].recording[0].size", "is required (or source)"),
    (CAM + REC + "size = -1\n", "camera[0].recording[0].size", "must be a non-negative integer"),
    (CAM + REC + "size = 1.5\n", "camera[0].recording[0].size", "non-negative integer"),
    (CAM + REC + "size = 1\nseed = -2\n", "camera[0].recording[0].seed", "non-negative"),
    (CAM + REC + "size = 1\nsource = 'clips/a.mp4'\n", "camera[0].recording[0].source",
     "not both"),
    (CAM + REC + "source = 'clips/missing.mp4'\n", "camera[0].recording[0].source",
     "no such file"),
    (CAM + REC + "source = 'clips'\n", "camera[0].recording[0].source", "no such file"),
    (CAM + REC + "size = 1\nduration_s = -3\n", "camera[0].recording[0].duration_s", ">= 0"),
    (CAM + REC + "size = 1\nprerecord_s = 'x'\n", "camera[0].recording[0].prerecord_s",
     ">= 0"),
    (CAM + REC + "size = 1\nname_hex = '41'\n", "camera[0].recording[0].name_hex", "not both"),
    (CAM + '[[camera.recording]]\nstarted = "2026-11-25T14:02:11Z"\nsize = 1\n',
     "camera[0].recording[0].name", "is required (or name_hex)"),
    (CAM + '[[camera.recording]]\nname = ""\nstarted = "2026-11-25T14:02:11Z"\nsize = 1\n',
     "camera[0].recording[0].name", "must not be empty"),
    (CAM + '[[camera.recording]]\nname_hex = "zz"\nstarted = "2026-11-25T14:02:11Z"\n'
     'size = 1\n', "camera[0].recording[0].name_hex", "hexadecimal"),
    (CAM + '[[camera.recording]]\nname_hex = ""\nstarted = "2026-11-25T14:02:11Z"\n'
     'size = 1\n', "camera[0].recording[0].name_hex", "must not be empty"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\n', "camera[0].recording[0].started",
     "is required"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\nstarted = "yesterday"\n',
     "camera[0].recording[0].started", "RFC 3339"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\nstarted = "2026-11-25T14:02:11"\n',
     "camera[0].recording[0].started", "UTC offset"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\nstarted = 2026-11-25T14:02:11\n',
     "camera[0].recording[0].started", "UTC offset"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\nstarted = 2026-11-25\n',
     "camera[0].recording[0].started", "full date and time"),
    (CAM + '[[camera.recording]]\nname = "a"\nsize = 1\nstarted = 5\n',
     "camera[0].recording[0].started", "RFC 3339"),
    (CAM + '[[camera.fault]]\nat_byte = 1\n', "camera[0].fault[0].kind", "is required"),
    (CAM + '[[camera.fault]]\nkind = "explode"\n', "camera[0].fault[0].kind", "one of unplug"),
    (CAM + '[[camera.fault]]\nkind = "stall"\nat_byte = -1\n', "camera[0].fault[0].at_byte",
     "must be a non-negative integer"),
    (CAM + '[[camera.fault]]\nkind = "stall"\ntimes = 0\n', "camera[0].fault[0].times",
     '>= 1 or "always"'),
    (CAM + '[[camera.fault]]\nkind = "stall"\ntimes = "often"\n', "camera[0].fault[0].times",
     '"always"'),
    (CAM + '[[camera.fault]]\nkind = "slow"\ndelay_s = -1\n', "camera[0].fault[0].delay_s",
     "0 to 3600"),
    (CAM + '[[camera.fault]]\nkind = "stall"\nrecording = "nope.mp4"\n',
     "camera[0].fault[0].recording", "one of this camera's recordings"),
    (CAM + '[[camera.fault]]\nkind = "stall"\nrecording_hex = "00"\n',
     "camera[0].fault[0].recording_hex", "one of this camera's recordings"),
    (CAM + '[[camera.fault]]\nkind = "stall"\nwhen = 1\n', "camera[0].fault[0].when",
     "unknown key"),
    (CAM + '[[camera.shift_sample]]\noffset_s = 1\n', "camera[0].shift_sample[0].soc_percent",
     "is required"),
    (CAM + '[[camera.shift_sample]]\noffset_s = 1\nsoc_percent = 200\nvoltage_mv = 1\n'
     'current_ma = 1\ntemperature_c = 1\n', "camera[0].shift_sample[0].soc_percent",
     "0 to 100"),
    (CAM + '[[camera.shift_event]]\noffset_s = 1\n', "camera[0].shift_event[0].kind",
     "is required"),
    (CAM + '[[camera.shift_event]]\noffset_s = 1\nkind = "party"\n',
     "camera[0].shift_event[0].kind", "one of power_on"),
    (CAM + '[[camera.shift_event]]\nkind = "docked"\n', "camera[0].shift_event[0].offset_s",
     "is required"),
    (CAM + "recording = 3\n", "camera[0].recording", "array of tables"),
    (CAM + "recording = [3]\n", "camera[0].recording[0]", "must be a table"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_input_names_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    err = info.value
    assert err.path == str(path.absolute())
    assert err.where == key
    assert problem in err.problem
    message = str(err)
    assert "\n" not in message and message.startswith(str(path.absolute()) + ": " + key)


def test_not_toml(tmp_path):
    path = write(tmp_path, "[[camera]\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_scenario(path)
    assert info.value.where is None


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_bytes(b'[[camera]]\nserial = "\xff"\nslot = 1\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(path)


def test_source_is_relative_to_scenario_file_not_cwd(tmp_path, monkeypatch):
    write(tmp_path, "")
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    path = write(tmp_path, CAM + REC + "source = 'clips/a.mp4'\n")
    rec = load_scenario(path).cameras[0].recordings[0]
    assert rec.source == tmp_path / "clips" / "a.mp4"
    assert rec.source.is_absolute()


def test_every_key_the_loader_reads_is_documented(tmp_path, monkeypatch):
    asked: set[str] = set()
    real_raw, real_has = scenario_mod._Table.raw, scenario_mod._Table.has

    def raw(self, name):
        asked.add(name)
        return real_raw(self, name)

    def has(self, name):
        asked.add(name)
        return real_has(self, name)

    monkeypatch.setattr(scenario_mod._Table, "raw", raw)
    monkeypatch.setattr(scenario_mod._Table, "has", has)
    load_scenario(write(tmp_path, FULL))
    load_scenario(write(tmp_path, CAM + REC + "size = 1\n[[camera.fault]]\nkind = 'stall'\n"
                        "recording_hex = '612e6d7034'\n"))
    docs = (REPO / "docs" / "simulator.md").read_text()
    assert len(asked) > 40
    missing = sorted(k for k in asked if f"`{k}`" not in docs)
    assert missing == []
