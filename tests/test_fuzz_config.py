"""Fuzzing the config file and drivers.d parsers: whatever the bytes, the answer is a
checked value or one ConfigError naming the file — never another exception, a hang or a
big allocation. (Budget and longer runs: tests/fuzz_support.py.)"""

from __future__ import annotations

from pathlib import Path

from fuzz_support import FUZZ, TOML_TOKENS, mutated, only_raises
from hypothesis import given
from hypothesis import strategies as st

from dockd.config import Config, check_for_ingest, load_config, parse_config
from dockd.crypto.keys import generate_identity
from dockd.errors import ConfigError
from dockd.matching import load_dropins, parse_rules

ROOT = Path(__file__).resolve().parent.parent
CONFIG_SEEDS = [
    (ROOT / "config" / "dockd.toml").read_bytes(),
    b'[storage]\npath = "/srv/evidence"\nmin_free_mib = 0\n[catalog]\nurl = "sqlite:///x"\n'
    b'[encryption]\nrecipients = ["' + generate_identity()[1].encode() + b'"]\n'
    b'[ingest]\nmax_retries = 3\ntransfer_timeout_s = 0.5\n[log]\nformat = "json"\n'
    b'[health]\nshift_hours = 10.0\n[drivers]\ndropin_dir = "drivers.d"\n',
]
DROPIN_SEEDS = [
    (ROOT / "drivers" / "netco" / "dockd_netco" / "match.toml").read_bytes(),
    b'[[match]]\ndriver = "netco"\nvendor_id = 0x1209\nproduct_id = 0xDC01\n'
    b'serial_pattern = "^NC-[0-9]+$"\ndisabled = false\n\n[[match]]\ndriver = "x"\n'
    b"vendor_id = 1\ninterface_class = 255\n",
]
DROPIN_TOKENS = [*TOML_TOKENS, b"(a+)+$", b"[", b"(?P<", b"\\", b"x" * 300, b"*" * 40]


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


@FUZZ
@given(mutated(CONFIG_SEEDS))
def test_config_text(data: bytes) -> None:
    def parse() -> None:
        config = parse_config(_text(data), Path("/etc/dockd/dockd.toml"))
        assert isinstance(config, Config)
    exc = only_raises(parse, ConfigError, "parse_config")
    if exc is not None:
        assert str(exc).startswith("/etc/dockd/dockd.toml")


@FUZZ
@given(data=mutated(CONFIG_SEEDS))
def test_config_file_bytes_and_ingest_checks(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "dockd.toml"
    path.write_bytes(data)
    path.chmod(0o600)

    def load_and_check() -> None:
        check_for_ingest(load_config(path))
    only_raises(load_and_check, ConfigError, "load_config")


@FUZZ
@given(st.binary(max_size=2048))
def test_config_random_bytes(data: bytes) -> None:
    only_raises(lambda: parse_config(_text(data), Path("c.toml")), ConfigError, "random")


@FUZZ
@given(mutated(DROPIN_SEEDS, DROPIN_TOKENS))
def test_dropin_text(data: bytes) -> None:
    only_raises(lambda: parse_rules(_text(data), "drivers.d/x.toml"), ConfigError,
                "parse_rules")


@FUZZ
@given(data=mutated(DROPIN_SEEDS, DROPIN_TOKENS))
def test_dropin_directory(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "50-x.toml").write_bytes(data)
    only_raises(lambda: load_dropins(tmp_path), ConfigError, "load_dropins")


def test_the_seeds_are_valid(tmp_path: Path) -> None:
    # a mutator that starts from broken seeds only ever tests the TOML decoder
    for seed in CONFIG_SEEDS:
        parse_config(seed.decode(), Path("c.toml"))
    path = tmp_path / "dockd.toml"
    path.write_bytes(CONFIG_SEEDS[1])
    check_for_ingest(load_config(path))
    for seed in DROPIN_SEEDS:
        assert parse_rules(seed.decode(), "d.toml")
