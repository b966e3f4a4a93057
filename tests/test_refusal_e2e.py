"""Refuse the recording, not the camera — against the real `dockd run --once` process.

The field problem this project started from: "on some cameras the data could not be
downloaded". One recording whose name holds U+202E, a control character or a NUL once made a
camera's whole listing refused: its well-named recordings were never ingested and nothing
showed in `dockctl recordings`, `status` or `health`. Now a hostile entry is refused on its
own (a `refused` row with its reason, kept on the camera) and its siblings are ingested; a
listing that cannot be read at all is the camera's refusal, shown everywhere a person looks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import (
    DOCKD,
    EXIT_INCOMPLETE,
    Env,
    assert_nothing_lost,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    still_on_camera,
)

GOOD = ["20261125_080000_0001.MP4", "20261125_090000_0002.MP4"]


def _dockctl(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKD.with_name("dockctl")), args[0], "--config",
                           str(env.config), *args[1:]], capture_output=True, text=True,
                          timeout=60, check=False)


def _mixed(hostile: list[dict[str, Any]]) -> str:
    recs = [recording(GOOD[0], 120_000, seed=1, minute=0), *hostile,
            recording(GOOD[1], 90_000, seed=2, minute=30)]
    return scenario_toml([{"serial": "NC-MIX", "slot": 1, "recording": recs},
                          {"serial": "NC-CALM", "slot": 2,
                           "recording": [recording("calm.MP4", 50_000, seed=3)]}])


def _hex(raw: bytes, minute: int, seed: int) -> dict[str, Any]:
    return {"name_hex": raw.hex(" "), "size": 10_000, "seed": seed,
            "started": f"2026-11-25T08:{minute:02d}:00Z"}


HOSTILE = {
    "rtl-override-and-control": ([_hex("A\u202eB.MP4".encode(), 10, 7),
                                  _hex(b"C\x1bD.MP4", 20, 8)],
                                 ["A\\u202eB.MP4", "C\\x1bD.MP4"], "U+202E"),
    "nul": ([_hex(b"clip\x00.MP4", 10, 9)], ["clip\\x00.MP4"], "NUL"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_name_is_refused_alone_and_its_siblings_are_ingested(tmp_path: Path,
                                                                       case: str) -> None:
    entries, labels, why = HOSTILE[case]
    env = make_env(tmp_path, scenario_text=_mixed(entries))
    run = run_daemon(env, reset=True)
    assert run.returncode == EXIT_INCOMPLETE, run.stderr
    # the well-named siblings left the camera only as verified copies of their bytes
    assert_nothing_lost(env, decrypt=True)
    kept = {bytes.fromhex(e["name_hex"].replace(" ", "")).decode() for e in entries}
    assert still_on_camera(env) == {"NC-MIX": kept, "NC-CALM": set()}
    [session] = [s for s in run.named("dock_session") if s["serial"] == "NC-MIX"]
    assert (session["listed"], session["stored"], session["refused"]) == (
        len(GOOD) + len(entries), len(GOOD), len(entries))
    # the exit line names what stayed and why, never "0 not stored" for a refused camera
    assert f"{len(entries)} of {len(GOOD) + len(entries)} listed not stored" in run.stderr
    refused = run.named("recording_refused")
    assert sorted(e["recording"] for e in refused) == sorted(labels)
    assert all(e["error_kind"] == "refused" and why in " ".join(x["error"] for x in refused)
               for e in refused)

    listed = json.loads(_dockctl(env, "recordings", "--camera", "NC-MIX", "--json").stdout)
    rows = {r["camera_name"]: r for r in listed}
    assert {rows[label]["status"] for label in labels} == {"refused"}
    assert all(rows[label]["failure_reason"] for label in labels)
    assert {rows[name]["status"] for name in GOOD} == {"deleted_from_camera"}
    table = _dockctl(env, "recordings", "--camera", "NC-MIX").stdout
    assert all(label in table for label in labels)
    assert "\u202e" not in table and "\x1b" not in table and "\x00" not in table

    health = json.loads(_dockctl(env, "health", "--json").stdout)
    findings = [f for f in health["findings"] if f["code"] == "recordings_refused"]
    assert [(f["subject"], f["evidence"]["count"]) for f in findings] == [
        ("NC-MIX", len(entries))]

    # docked again: still refused, one row each, the siblings stay gone
    again = run_daemon(env)
    assert again.returncode == EXIT_INCOMPLETE
    listed = json.loads(_dockctl(env, "recordings", "--camera", "NC-MIX", "--json").stdout)
    assert sorted(r["camera_name"] for r in listed) == sorted([*GOOD, *labels])


def test_a_listing_that_cannot_be_read_is_the_cameras_refusal_shown_everywhere(
        tmp_path: Path) -> None:
    calm = scenario_toml([{"serial": "NC-CALM", "slot": 2,
                            "recording": [recording("calm.MP4", 50_000, 3)]}])
    endless = ('[[camera]]\nserial = "NC-ENDLESS"\nslot = 1\n'
               "[camera.hostile]\nendless_listing = true\n"
               '[[camera.recording]]\nname = "e.MP4"\nsize = 10000\nseed = 4\n'
               'started = "2026-11-25T08:00:00Z"\n')
    env = make_env(tmp_path, scenario_text=calm + "\n" + endless)
    run = run_daemon(env, reset=True)
    assert run.returncode == EXIT_INCOMPLETE, run.stderr
    assert still_on_camera(env) == {"NC-ENDLESS": {"e.MP4"}, "NC-CALM": set()}
    [session] = [s for s in run.named("dock_session") if s["serial"] == "NC-ENDLESS"]
    assert session["outcome"] == "listing_refused" and "page count" in session["refusal"]
    assert "NC-ENDLESS slot 1: nothing listed: protocol:" in run.stderr
    assert "0 not stored" not in run.stderr

    shown = _dockctl(env, "recordings", "--camera", "NC-ENDLESS")
    assert shown.returncode == 0
    assert "NC-ENDLESS: nothing listed: protocol:" in shown.stdout + shown.stderr
    status = _dockctl(env, "status").stdout
    assert "listing_refused" in status and "nothing listed" in status
    health = json.loads(_dockctl(env, "health", "--json").stdout)
    [finding] = [f for f in health["findings"] if f["code"] == "listing_refused"]
    assert (finding["subject"], finding["severity"]) == ("NC-ENDLESS", "critical")


def test_a_camera_that_cannot_be_identified_leaves_a_trace(tmp_path: Path) -> None:
    cams = [{"serial": "NC-MUTE", "slot": 3, "recording": [recording("m.MP4", 10_000, 6)],
             "fault": [{"kind": "read_error", "command": "info", "times": "always"}]}]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams))
    run = run_daemon(env, reset=True)
    assert run.returncode == EXIT_INCOMPLETE, run.stderr
    assert still_on_camera(env) == {"NC-MUTE": {"m.MP4"}}
    status = _dockctl(env, "status")
    assert status.returncode == 0
    assert "camera_refused" in status.stdout and "slot 3" in status.stdout
