"""Errors a person can act on: a wrong identity is one line per recording and a short summary,
not every failure twice; a file that is no key says so, by name; a repeated delete on the
camera is counted where the dock session is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dockctl_env import RECORDINGS, World, pristine, world
from helpers_ingest import make_env, recording, run_daemon, scenario_toml

from dockd.crypto.keys import generate_identity
from dockd.errors import CryptoError, VerifyFailed

_ = (pristine, world)  # fixtures


def test_a_wrong_identity_is_one_line_per_recording_and_a_short_summary(world: World,
                                                                        tmp_path: Path):
    other = tmp_path / "someone-else.key"
    other.write_text(generate_identity()[0] + "\n")
    result = world.dockctl("verify", "--identity", str(other))
    assert result.exit_code == VerifyFailed.exit_code
    fails = [ln for ln in result.stdout.splitlines() if ln.startswith("FAIL ")]
    assert len(fails) == len(RECORDINGS)  # one per recording
    for _serial, name, _size, _seed in RECORDINGS:
        assert sum(name in ln for ln in fails) == 1, (name, fails)
    summary = [ln for ln in result.stdout.splitlines() if ln.startswith("summary: ")]
    assert summary == [f"summary: {len(RECORDINGS)} problems: wrong_identity {len(RECORDINGS)}"
                       f" — the identity opens none of the {len(RECORDINGS)} recordings: is "
                       "it the key of a recipient in this dock's [encryption] recipients?"]
    # the last line: that summary, once, short; no failure repeated, no path
    [last] = result.stderr.splitlines()
    assert last.startswith(f"dockctl: verify found {len(RECORDINGS)} problems: wrong_identity")
    assert last.endswith("(FAIL lines above)")
    assert len(last) < 250
    assert str(world.store) not in result.stderr and ".age" not in result.stderr
    # the JSON keeps everything
    as_json = world.dockctl("verify", "--identity", str(other), "--json")
    report = json.loads(as_json.stdout)
    assert [f["problem"] for f in report["findings"]] == ["wrong_identity"] * len(RECORDINGS)
    assert all(f["path"].endswith(".age") for f in report["findings"])
    [last] = as_json.stderr.splitlines()
    assert last.endswith("(listed in the JSON output)") and ".age" not in last


def test_one_problem_is_summarised_in_the_singular(world: World):
    rec = world.recordings()["A_0001.MP4"]
    assert rec.store_path is not None
    Path(rec.store_path).unlink()
    result = world.dockctl("verify")
    assert result.exit_code == VerifyFailed.exit_code
    assert result.stderr == "dockctl: verify found 1 problem: missing 1 (FAIL lines above)\n"
    assert f"FAIL recording {rec.id} (NC-1/A_0001.MP4) {rec.store_path}: recorded file is " \
        "missing" in result.stdout


def not_keys(tmp_path: Path, world: World) -> dict[str, tuple[Path, str]]:
    """Files an officer might pass by mistake, and what the message adds for each."""
    recipient = tmp_path / "recipient.txt"
    recipient.write_text(world.recipient + "\n")
    clip = next(world.store.rglob("*.age"))
    config = world.config
    empty = tmp_path / "empty.key"
    empty.write_text("# created: 2026-11-25T14:02:11+00:00\n\n")
    return {"recipient": (recipient, " (it holds a recipient, age1…: the public half; "
                                     "decrypting needs the AGE-SECRET-KEY-1… file made "
                                     "with it)"),
            "encrypted clip": (clip, ""), "config": (config, ""), "comments only": (empty, "")}


@pytest.mark.parametrize("kind", ["recipient", "encrypted clip", "config", "comments only"])
@pytest.mark.parametrize("command", ["verify", "export"])
def test_a_file_that_is_no_key_says_so_by_name(world: World, tmp_path: Path, kind: str,
                                              command: str):
    path, hint = not_keys(tmp_path, world)[kind]
    args = ["--identity", str(path)]
    if command == "export":
        args = ["1", *args, "--out", str(tmp_path / "out")]
    result = world.dockctl(command, *args)
    assert result.exit_code == CryptoError.exit_code == 5
    assert result.stderr == f"dockctl: not an age identity file: {path}{hint}\n"
    assert not (tmp_path / "out").exists()


def test_a_damaged_key_line_still_names_its_line(world: World, tmp_path: Path):
    key = tmp_path / "damaged.key"
    secret = generate_identity()[0]
    key.write_text("# created: 2026-11-25\n" + secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
                   + "\n")
    result = world.dockctl("verify", "--identity", str(key))
    assert result.exit_code == 5
    assert result.stderr.startswith(f"dockctl: {key}, line 2: ")


def test_a_repeated_delete_is_counted_in_the_dock_session_line(tmp_path: Path):
    """The camera lists again what the catalog says it deleted (its flash restored): every
    recording is proven and deleted again, and `dock_session` says so (`deleted`), rather
    than `deleted=0` beside `already_known`."""
    env = make_env(tmp_path, scenario_text=scenario_toml([
        {"serial": "NC-REDEL", "slot": 1, "recording": [recording("A.MP4", 100_000, 1, 0),
                                                         recording("B.MP4", 120_000, 2, 1)]}]))
    first = run_daemon(env, reset=True)
    again = run_daemon(env, reset=True)  # --sim-reset: the camera holds both clips again
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    [one] = first.named("dock_session")
    [two] = again.named("dock_session")
    assert (one["listed"], one["stored"], one["deleted"]) == (2, 2, 2)
    assert (two["listed"], two["already_known"], two["stored"], two["deleted"]) == (2, 2, 0, 2)
    assert len(again.named("camera_delete_repeated")) == 2
