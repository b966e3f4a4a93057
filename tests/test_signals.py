"""The real `dockd run` process and real signals: SIGTERM mid-transfer checkpoints and exits
0, the next start resumes with nothing lost; SIGHUP applies a good config and refuses a
broken one while the transfer in flight carries on."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from helpers_ingest import (
    assert_nothing_lost,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    start_daemon,
    still_on_camera,
    wait_for_event,
)

MIB = 1 << 20


def _events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


class UnwatchedConfig:
    """The config as a symlink whose every version lives in a directory of its own: the
    daemon's inotify watcher follows the link once, at start, so a later swap is seen only
    through SIGHUP — what the SIGHUP tests must prove (a plain save triggers a reload too)."""

    def __init__(self, config: Path) -> None:
        self.link, self.versions = config, 0
        self.swap(config.read_text())

    def swap(self, text: str) -> None:
        self.versions += 1
        target = self.link.parent / f"config-v{self.versions}" / self.link.name
        target.parent.mkdir()
        target.write_text(text)
        target.chmod(0o600)
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.symlink_to(target)
        tmp.replace(self.link)


def _slow_camera(size: int = 24 * MIB) -> str:
    # 20 MB/s: a 24 MiB recording takes ~1.3 s, long enough to signal mid-transfer
    return scenario_toml([{"serial": "NC-SIG", "slot": 2, "link_mb_s": 20,
                           "recording": [recording("SIG.MP4", size, seed=11)]}])


def _wait_until_under_way(log: Path) -> None:
    """The transfer runs at 20 MB/s with a checkpoint every MiB: a second in, it is mid-way
    and several checkpoints are durable (the assertions below check that it was)."""
    assert '"event": "camera_docked"' in log.read_text()
    time.sleep(1.0)


def test_sigterm_mid_transfer_exits_zero_and_the_next_start_resumes(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=_slow_camera())
    log = tmp_path / "first.log"
    proc = start_daemon(env, log, reset=True)
    assert wait_for_event(proc, log, "camera_docked")
    _wait_until_under_way(log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()[-2000:]
    events = _events(log)
    assert any(e["event"] == "stopping" and e["signal"] == "SIGTERM" for e in events)
    [interrupted] = [e for e in events if e["event"] == "transfer"]
    assert interrupted["outcome"] == "interrupted"
    assert still_on_camera(env) == {"NC-SIG": {"SIG.MP4"}}  # nothing deleted without a copy

    second = run_daemon(env)
    assert second.returncode == 0, second.stderr
    [stored] = second.named("transfer")
    assert stored["outcome"] == "stored"
    assert 0 < int(stored["resumed_from"]) < 24 * MIB  # resumed, not restarted
    assert still_on_camera(env) == {"NC-SIG": set()}
    assert_nothing_lost(env)


def test_sighup_applies_a_good_config_and_refuses_a_broken_one(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=_slow_camera(32 * MIB))
    good = env.config.read_text()
    config = UnwatchedConfig(env.config)
    log = tmp_path / "hup.log"
    proc = start_daemon(env, log, reset=True)
    assert wait_for_event(proc, log, "camera_docked")

    config.swap(good.replace("max_retries = 3", "max_retries = 5"))
    proc.send_signal(signal.SIGHUP)
    assert wait_for_event(proc, log, "config_reloaded")

    config.swap(good + "\n[ingest]\nbogus = 1\n")  # a duplicate table: bad TOML
    proc.send_signal(signal.SIGHUP)
    assert wait_for_event(proc, log, "config_reload_refused")
    config.swap(good)

    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    events = _events(log)
    [refused] = [e for e in events if e["event"] == "config_reload_refused"]
    assert str(env.config) in str(refused["error"])  # names the file
    transfers = [e for e in events if e["event"] == "transfer"]
    assert [t["outcome"] for t in transfers] == ["stored"]  # the transfer was never dropped
    assert_nothing_lost(env)


def test_sighup_keeps_restart_only_settings(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=_slow_camera(16 * MIB))
    good = env.config.read_text()
    config = UnwatchedConfig(env.config)
    log = tmp_path / "hup2.log"
    proc = start_daemon(env, log, reset=True)
    assert wait_for_event(proc, log, "camera_docked")
    config.swap(good.replace(str(env.store), str(tmp_path / "elsewhere")))
    proc.send_signal(signal.SIGHUP)
    assert wait_for_event(proc, log, "config_reloaded")
    assert proc.wait(timeout=30) == 0
    [reloaded] = [e for e in _events(log) if e["event"] == "config_reloaded"]
    assert reloaded["needs_restart"] == ["storage.path"]
    assert not (tmp_path / "elsewhere").exists()
    assert_nothing_lost(env)


def test_saving_the_config_reloads_it_without_a_signal(tmp_path: Path) -> None:
    """watchdog (inotify) sees the admin save the file and takes the SIGHUP path."""
    env = make_env(tmp_path, scenario_text=_slow_camera(24 * MIB))
    good = env.config.read_text()
    log = tmp_path / "watch.log"
    proc = start_daemon(env, log, reset=True)
    assert wait_for_event(proc, log, "camera_docked")
    env.config.write_text(good.replace("max_retries = 3", "max_retries = 4"))
    assert wait_for_event(proc, log, "config_reloaded")
    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    assert_nothing_lost(env)
