"""`dockctl recordings` against a catalog the real daemon filled."""

from __future__ import annotations

from dockctl_env import RECORDINGS, World, pristine, world

from dockd.errors import CatalogError, ConfigError

__all__ = ["pristine", "world"]


def test_json_lists_every_ingested_recording_with_its_store_path(world: World) -> None:
    rows = world.json("recordings")
    assert sorted((r["camera_serial"], r["camera_name"], r["size"]) for r in rows) == sorted(
        (c, n, s) for c, n, s, _seed in RECORDINGS)
    for r in rows:
        assert r["status"] == "deleted_from_camera"
        assert r["failure_reason"] is None
        assert r["store_path"].startswith(str(world.store))
        assert r["camera_sha256"] == r["plaintext_sha256"]


def test_camera_filter_and_table(world: World) -> None:
    rows = world.json("recordings", "--camera", "NC-2")
    assert [r["camera_name"] for r in rows] == ["C_0003.MP4"]
    table = world.dockctl("recordings", "--camera", "NC-1")
    assert table.exit_code == 0, table.output
    assert "A_0001.MP4" in table.stdout and "B_0002.MP4" in table.stdout
    assert "C_0003.MP4" not in table.stdout
    assert "deleted_from_camera" in table.stdout


def test_missing_catalog_is_one_clear_error_and_creates_nothing(world: World) -> None:
    world.catalog_path.unlink()
    result = world.dockctl("recordings")
    assert result.exit_code == CatalogError.exit_code
    assert result.stderr.strip() == f"dockctl: no catalog at {world.catalog_path} " \
        f"(see [catalog] url in {world.config})"
    assert not world.catalog_path.exists()


def test_missing_config_file_exits_2(world: World) -> None:
    world.config.unlink()
    result = world.dockctl("recordings")
    assert result.exit_code == ConfigError.exit_code
    assert "no such file" in result.stderr
