"""Config: defaults → file; every problem is one line naming file and key, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockd.config import load_config, parse_config
from dockd.errors import ConfigError


def test_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text('[storage]\npath = "evidence"\n[ingest]\nmax_retries = 5\n'
                    'delete_after_ingest = false\n')
    config = load_config(path)
    assert config.storage.path == tmp_path / "evidence"  # relative to the config file
    assert config.ingest.max_retries == 5
    assert config.ingest.delete_after_ingest is False
    assert config.ingest.max_parallel_cameras == 4  # default kept


@pytest.mark.parametrize(("text", "where"), [
    ("[storage]\ncolour = 1\n", "storage.colour: unknown key"),
    ("[nonsense]\n", "nonsense: unknown section"),
    ("[ingest]\nmax_retries = -1\n", "ingest.max_retries: must be between"),
    ("[ingest]\nmax_retries = 1.5\n", "ingest.max_retries: must be a whole number"),
    ("[ingest]\ndelete_after_ingest = 1\n", "ingest.delete_after_ingest: must be true or false"),
    ("[encryption]\nrecipients = \"age1x\"\n", "encryption.recipients: must be a list"),
    ("[log]\nformat = \"xml\"\n", "log.format: must be one of"),
    ("storage = 3\n", "storage: must be a table"),
    ("[storage\n", "not valid TOML"),
])  # fmt: skip
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    with pytest.raises(ConfigError) as err:
        parse_config(text, path)
    assert str(err.value).startswith(str(path))
    assert where in str(err.value)
    assert err.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_host_retention_and_categories_parse(tmp_path: Path) -> None:
    config = parse_config(
        '[host]\nid = "dock-a.town-hall"\n'
        "[retention]\ndefault_days = 14\nsweep_every_h = 0.5\n"
        '[retention.categories]\nevidence = "until_released"\ntraffic = 31\n',
        tmp_path / "dockd.toml")
    assert config.host_id == "dock-a.town-hall"
    assert config.retention.default_days == 14
    assert config.retention.sweep_every_h == 0.5
    assert config.retention.days_for(None) == 14
    assert config.retention.days_for("traffic") == 31
    assert config.retention.days_for("evidence") == "until_released"
    # a category no longer configured keeps its recordings for good (0), never the default:
    # renaming "evidence" in the config must not expire what was filed "until released"
    assert config.retention.days_for("not-configured") == 0


@pytest.mark.parametrize(("text", "where"), [
    ('[host]\nid = "a|b"\n', "host.id"),  # "|" separates the fields of a lease owner
    ('[host]\nid = ""\nx = 1\n', "host.x"),
    ("[retention]\ndefault_days = -1\n", "retention.default_days"),
    ("[retention]\nsweep_every_h = 0\n", "retention.sweep_every_h"),
    ("[retention.categories]\nevidence = 0\n", "retention.categories.evidence"),
    ('[retention.categories]\nevidence = "forever"\n', "retention.categories.evidence"),
    ('[retention.categories]\n"../x" = 3\n', "retention.categories.../x"),
    ("[retention]\ncategories = 3\n", "retention.categories"),
])
def test_bad_host_or_retention_names_the_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "dockd.toml")
    assert err.value.where == where
