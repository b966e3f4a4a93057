"""The vault's S3 layer against a real S3 server with Object Lock (SeaweedFS), no mocks.

One server for the module (tests/vault_server.py); every test uses its own keys or bucket.
The fault tests kill and restart that server, then leave it running for the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import socket
import stat
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vault_server import weed_fixture

from dockd.errors import ConfigError, LeaseHeld
from dockd.vault import (
    Secret,
    VaultClient,
    VaultIntegrityError,
    VaultMisconfigured,
    VaultObjectMissing,
    VaultRefused,
    VaultSettings,
    VaultUnreachable,
    parse_vault_settings,
)
from dockd.vault.metadata import decode_metadata, encode_metadata
from dockd.vault.parts import b64_of_hex, composite_b64
from dockd.vault.resume import exclusive, state_path

MiB = 1 << 20
PART = 5 * MiB  # the servers' settings use part_mib=5, S3's minimum

weed = weed_fixture("module")


@pytest.fixture(scope="module")
def bucket(weed) -> str:
    return weed.new_bucket()


@pytest.fixture
def client(weed, bucket) -> VaultClient:
    return VaultClient(weed.settings(bucket))


def make_file(path: Path, size: int, seed: int = 1) -> tuple[Path, str]:
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(MiB, left))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def soon(seconds: float = 3600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def upload(client: VaultClient, path: Path, key: str, sha: str, tmp_path: Path, **kw):
    args = {"retain_until": soon(), "legal_hold": False, "metadata": {},
            "resume_dir": tmp_path / "resume"}
    args.update(kw)
    return client.upload(path, key, stored_sha256=sha, **args)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- settings (no server) -------------------------------------------------------------


def _cred_file(path: Path, body: str, mode: int = 0o600) -> Path:
    path.write_text(body)
    path.chmod(mode)
    return path


def test_settings_from_table_and_credentials_file(tmp_path):
    creds = _cred_file(tmp_path / "vault.cred",
                       "# off-site vault\naccess_key = AKDOCK1\nsecret_key = 's3cr3t-value'\n")
    s = parse_vault_settings({"endpoint": "https://vault.example:9000/", "bucket": "evidence",
                              "prefix": "site-a/", "lock_mode": "GOVERNANCE", "part_mib": 16,
                              "credentials_file": str(creds)}, "dockd.toml")
    assert (s.endpoint, s.bucket, s.region, s.prefix, s.lock_mode, s.part_bytes) == (
        "https://vault.example:9000", "evidence", "us-east-1", "site-a/", "GOVERNANCE", 16 * MiB)
    assert (s.access_key.reveal(), s.secret_key.reveal()) == ("AKDOCK1", "s3cr3t-value")
    for shown in (repr(s), str(s), repr(dataclasses.asdict(s)), str(s.secret_key)):
        assert "s3cr3t" not in shown and "AKDOCK1" not in shown


def test_settings_json_credentials_and_defaults(tmp_path):
    creds = _cred_file(tmp_path / "c.json", json.dumps({"access_key": "A", "secret_key": "B"}))
    s = parse_vault_settings({"endpoint": "http://127.0.0.1:8333", "bucket": "ev-1",
                              "credentials_file": str(creds)}, "x.toml")
    assert (s.lock_mode, s.part_mib, s.prefix, s.secret_key.reveal()) == ("COMPLIANCE", 64, "", "B")


def test_settings_credentials_from_environment():
    env = {"DOCKD_VAULT_ACCESS_KEY": "A", "DOCKD_VAULT_SECRET_KEY": "B"}
    s = parse_vault_settings({"endpoint": "http://h", "bucket": "abc"}, "x.toml", environ=env)
    assert s.access_key == Secret("A")
    with pytest.raises(ConfigError, match="no credentials") as exc:
        parse_vault_settings({"endpoint": "http://h", "bucket": "abc"}, "x.toml", environ={})
    assert exc.value.where == "vault.credentials_file"


def test_a_credentials_file_others_can_read_is_refused(tmp_path):
    creds = _cred_file(tmp_path / "vault.cred", "access_key = A\nsecret_key = B\n", 0o644)
    with pytest.raises(ConfigError) as exc:
        parse_vault_settings({"endpoint": "http://h", "bucket": "abc",
                              "credentials_file": str(creds)}, "dockd.toml")
    text = one_line(exc)
    assert exc.value.where == "vault.credentials_file"
    assert str(creds) in text and "0644" in text and "chmod 600" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file another owner")
def test_a_credentials_file_owned_by_someone_else_is_refused(tmp_path):
    creds = _cred_file(tmp_path / "vault.cred", "access_key = A\nsecret_key = B\n")
    os.chown(creds, 4242, 4242)
    with pytest.raises(ConfigError, match="uid 4242"):
        parse_vault_settings({"endpoint": "http://h", "bucket": "abc",
                              "credentials_file": str(creds)}, "dockd.toml")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("endpoint", "ftp://h", "http"),
    ("endpoint", "https://h/bucket", "scheme://host"),
    ("bucket", "Evidence_1", "bucket name"),
    ("bucket", "ab", "bucket name"),
    ("region", "US East", "region"),
    ("prefix", "/abs/", "relative"),
    ("prefix", "a/../b/", "relative"),
    ("prefix", "a/..", "relative"),
    ("lock_mode", "compliance", "COMPLIANCE or GOVERNANCE"),
    ("part_mib", 4, "between 5"),
    ("part_mib", "64", "number"),
    ("read_timeout_s", 0, "between"),
    ("colour", "blue", "unknown key"),
])
def test_each_bad_key_is_one_config_error(key, value, problem):
    table = {"endpoint": "http://h", "bucket": "abc", key: value}
    env = {"DOCKD_VAULT_ACCESS_KEY": "A", "DOCKD_VAULT_SECRET_KEY": "B"}
    with pytest.raises(ConfigError, match=problem) as exc:
        parse_vault_settings(table, "dockd.toml", environ=env)
    assert exc.value.where == f"vault.{key}"
    assert str(exc.value).startswith("dockd.toml: vault.")


def test_an_endpoint_with_credentials_is_refused_without_echoing_them(tmp_path):
    env = {"DOCKD_VAULT_ACCESS_KEY": "A", "DOCKD_VAULT_SECRET_KEY": "B"}
    with pytest.raises(ConfigError, match="must not contain credentials") as exc:
        parse_vault_settings({"endpoint": "https://ak:hunter2@h", "bucket": "abc"}, "d.toml",
                             environ=env)
    assert "hunter2" not in str(exc.value)


def test_metadata_is_ascii_on_the_wire_and_comes_back_exactly():
    meta = {"camera": "CAM-0042", "name": "Fahrt Zürich 08:15 100% ✓", "note": "a\nb"}
    wire = encode_metadata(meta)
    assert all(v.isascii() and v.isprintable() for v in wire.values())
    assert wire["camera"] == "CAM-0042"
    assert decode_metadata(wire) == meta
    with pytest.raises(ValueError, match="metadata key"):
        encode_metadata({"Bad Key": "x"})


def test_composite_checksum_is_sha256_of_part_sha256s():
    parts = [b"a" * 10, b"b" * 7]
    want = composite_b64([hashlib.sha256(p).digest() for p in parts])
    assert want == b64_of_hex(hashlib.sha256(b"".join(
        hashlib.sha256(p).digest() for p in parts)).hexdigest())


# --- the bucket ------------------------------------------------------------------------


def test_check_bucket_accepts_an_object_lock_bucket(weed, client):
    state = client.check_bucket(timedelta(days=3650))
    assert state.lock_enabled and state.default_retention is None


def test_check_bucket_refuses_a_bucket_without_object_lock(weed):
    plain = weed.new_bucket(lock=False)
    with pytest.raises(VaultMisconfigured, match="no Object Lock") as exc:
        VaultClient(weed.settings(plain)).check_bucket(None)
    assert plain in one_line(exc)


def test_check_bucket_refuses_a_missing_bucket(weed):
    with pytest.raises(VaultMisconfigured, match="does not exist"):
        VaultClient(weed.settings("no-such-bucket")).check_bucket(None)


def test_check_bucket_refuses_a_default_retention_shorter_than_policy(weed):
    short = weed.new_bucket(default=("GOVERNANCE", 1))
    vc = VaultClient(weed.settings(short))
    with pytest.raises(VaultMisconfigured, match=r"1 day .*shorter than the policy's 7 days"):
        vc.check_bucket(timedelta(days=7))
    assert vc.check_bucket(timedelta(days=1)).default_retention == timedelta(days=1)
    weed.set_default_retention(short, "COMPLIANCE", 1, "Years")
    state = vc.check_bucket(timedelta(days=365))
    assert (state.default_mode, state.default_retention) == ("COMPLIANCE", timedelta(days=365))


# --- uploads ---------------------------------------------------------------------------


def test_small_upload_is_checked_by_the_server_and_proven(client, tmp_path):
    path, sha = make_file(tmp_path / "small.age", 100_000)
    until = soon(3600)
    seen: list[int] = []
    r = upload(client, path, "cam/small.age", sha, tmp_path, retain_until=until,
               metadata={"recording": "Zürich 1", "sha256": sha}, progress=seen.append)
    assert (r.size, r.parts, r.checksum_sha256_b64, seen) == (100_000, 0, b64_of_hex(sha),
                                                               [100_000])
    head = client.head("cam/small.age", r.version_id)
    assert (head.exists, head.size, head.checksum, head.lock_mode, head.legal_hold) == (
        True, 100_000, b64_of_hex(sha), "COMPLIANCE", False)
    assert head.retain_until == until.replace(microsecond=0)
    assert head.metadata == {"recording": "Zürich 1", "sha256": sha}
    assert client.sha256_of("cam/small.age", r.version_id, piece=7_000) == sha


def test_multipart_upload_has_a_composite_checksum_and_is_proven(client, tmp_path):
    path, sha = make_file(tmp_path / "big.age", 3 * PART + MiB, seed=2)
    seen: list[int] = []
    r = upload(client, path, "cam/big.age", sha, tmp_path, legal_hold=True,
               progress=seen.append)
    assert seen == [PART, 2 * PART, 3 * PART, 3 * PART + MiB]
    data = path.read_bytes()
    digests = [hashlib.sha256(data[i:i + PART]).digest() for i in range(0, len(data), PART)]
    assert r.parts == 4
    assert r.checksum_sha256_b64 == composite_b64(digests) + "-4"
    head = client.head("cam/big.age", r.version_id)
    assert (head.size, head.checksum, head.legal_hold) == (len(data), r.checksum_sha256_b64,
                                                           True)
    assert client.sha256_of("cam/big.age", r.version_id) == sha
    with client.open_download("cam/big.age", r.version_id) as body:
        first = body.read(1000)
    assert first == data[:1000]
    assert list((tmp_path / "resume").glob("*.json")) == []  # the resume file is gone


def test_multipart_memory_stays_bounded(client, tmp_path):
    path, sha = make_file(tmp_path / "m.age", 4 * PART, seed=3)
    tracemalloc.start()
    try:
        upload(client, path, "cam/m.age", sha, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MiB, f"peak {peak / MiB:.1f} MiB for 5 MiB parts"


def test_a_prefix_is_part_of_the_object_key(weed, bucket, tmp_path):
    vc = VaultClient(weed.settings(bucket, prefix="site-a/"))
    path, sha = make_file(tmp_path / "p.age", 10)
    r = upload(vc, path, "x.age", sha, tmp_path)
    assert (r.key, r.object_key) == ("x.age", "site-a/x.age")
    assert weed.admin().head_object(Bucket=bucket, Key="site-a/x.age")["ContentLength"] == 10


def test_a_wrong_checksum_is_refused_by_the_server(client, tmp_path):
    path, _ = make_file(tmp_path / "bad.age", 1000)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(VaultIntegrityError, match="BadDigest") as exc:
        upload(client, path, "cam/bad.age", wrong, tmp_path)
    assert "cam/bad.age" in one_line(exc)
    assert not client.head("cam/bad.age", None).exists


def test_a_large_file_not_matching_the_catalog_is_not_sent(weed, bucket, client, tmp_path):
    path, _ = make_file(tmp_path / "bad2.age", 2 * PART + 1)
    wrong = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(VaultIntegrityError, match="nothing was sent"):
        upload(client, path, "cam/bad2.age", wrong, tmp_path)
    uploads = weed.admin().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert all(u["Key"] != "cam/bad2.age" for u in uploads)


def test_a_part_changed_on_disk_is_refused_then_resumed(client, tmp_path):
    path, sha = make_file(tmp_path / "flip.age", 3 * PART + 10, seed=4)
    offset = 2 * PART + 123  # inside part 3

    def flip(done: int) -> None:
        if done == PART:  # part 1 is in; damage part 3 before it is read
            with path.open("r+b") as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ 0xFF]))

    seen: list[int] = []
    with pytest.raises(VaultIntegrityError, match="BadDigest"):
        upload(client, path, "cam/flip.age", sha, tmp_path,
               progress=lambda n: (seen.append(n), flip(n)))
    assert seen == [PART, 2 * PART]
    flip(PART)  # undo
    seen.clear()
    r = upload(client, path, "cam/flip.age", sha, tmp_path, progress=seen.append)
    assert seen == [2 * PART, 3 * PART, 3 * PART + 10]  # parts 1-2 were not sent again
    assert client.sha256_of("cam/flip.age", r.version_id) == sha


def test_multipart_resumes_after_the_server_is_killed(weed, bucket, tmp_path):
    vc = VaultClient(weed.settings(bucket, max_attempts=1, connect_timeout_s=1.0))
    path, sha = make_file(tmp_path / "kill.age", 3 * PART + MiB, seed=5)
    resume = tmp_path / "resume"
    spath = state_path(resume, bucket, "cam/kill.age")

    def kill_after_two(done: int) -> None:
        if done == 2 * PART:
            weed.kill()

    try:
        with pytest.raises(VaultUnreachable) as exc:
            upload(vc, path, "cam/kill.age", sha, tmp_path, progress=kill_after_two)
        assert exc.value.retryable and "part 3/4" in one_line(exc)
        saved = json.loads(spath.read_text())
        assert stat.S_IMODE(spath.stat().st_mode) == 0o600
        assert sorted(saved["etags"]) == ["1", "2"]
    finally:
        weed.restart()
    # the server kept the unfinished upload and its two parts across SIGKILL + restart
    parts = weed.admin().list_parts(Bucket=bucket, Key="cam/kill.age",
                                    UploadId=saved["upload_id"])["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, PART), (2, PART)]

    seen: list[int] = []
    r = upload(vc, path, "cam/kill.age", sha, tmp_path, progress=seen.append)
    assert seen == [2 * PART, 3 * PART, 3 * PART + MiB]
    assert r.parts == 4 and not spath.exists()
    assert vc.sha256_of("cam/kill.age", r.version_id) == sha


def test_a_changed_file_aborts_the_old_upload_and_starts_over(weed, bucket, client, tmp_path):
    path, sha = make_file(tmp_path / "chg.age", 2 * PART + 5, seed=6)

    def crash(done: int) -> None:
        raise KeyboardInterrupt  # dockd stopped after part 1

    with pytest.raises(KeyboardInterrupt):
        upload(client, path, "cam/chg.age", sha, tmp_path, progress=crash)
    spath = state_path(tmp_path / "resume", bucket, "cam/chg.age")
    old = json.loads(spath.read_text())["upload_id"]
    path, sha2 = make_file(path, 2 * PART + 5, seed=7)  # re-encrypted: same size, new bytes
    seen: list[int] = []
    r = upload(client, path, "cam/chg.age", sha2, tmp_path, progress=seen.append)
    assert seen[0] == PART  # nothing carried over
    assert client.sha256_of("cam/chg.age", r.version_id) == sha2
    uploads = weed.admin().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert old not in {u["UploadId"] for u in uploads}


def test_a_lost_complete_answer_is_adopted_not_uploaded_twice(weed, bucket, client, tmp_path):
    path, sha = make_file(tmp_path / "lost.age", 2 * PART + 7, seed=8)
    spath = state_path(tmp_path / "resume", bucket, "cam/lost.age")
    saved: dict[str, object] = {}

    def grab(done: int) -> None:
        if done == path.stat().st_size:
            saved.update(json.loads(spath.read_text()))

    first = upload(client, path, "cam/lost.age", sha, tmp_path, progress=grab)
    # as if dockd died after Complete went through but before its answer arrived
    spath.write_text(json.dumps({**saved, "completing": True}))
    again = upload(client, path, "cam/lost.age", sha, tmp_path)
    assert again.version_id == first.version_id
    versions = weed.admin().list_object_versions(Bucket=bucket, Prefix="cam/lost.age")
    assert len(versions.get("Versions", [])) == 1


def test_a_second_writer_for_the_same_key_is_refused(bucket, client, tmp_path):
    path, sha = make_file(tmp_path / "two.age", 10)
    resume = tmp_path / "resume"
    with exclusive(resume, state_path(resume, bucket, "cam/two.age")), \
            pytest.raises(LeaseHeld):
        upload(client, path, "cam/two.age", sha, tmp_path)


# --- Object Lock -------------------------------------------------------------------------


def test_compliance_and_legal_hold_refuse_deletion(client, tmp_path):
    path, sha = make_file(tmp_path / "l.age", 10)
    until = soon(3)
    a = upload(client, path, "lock/a.age", sha, tmp_path, retain_until=until)
    b = upload(client, path, "lock/b.age", sha, tmp_path, retain_until=until, legal_hold=True)
    with pytest.raises(VaultRefused, match="COMPLIANCE retention until") as exc:
        client.delete_version("lock/a.age", a.version_id)
    assert "lock/a.age" in one_line(exc)
    with pytest.raises(VaultRefused):  # COMPLIANCE does not yield to the governance bypass
        client.delete_version("lock/a.age", a.version_id, bypass_governance=True)
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.2)
    client.delete_version("lock/a.age", a.version_id)  # its date has passed
    assert not client.head("lock/a.age", a.version_id).exists
    with pytest.raises(VaultRefused, match="legal hold"):
        client.delete_version("lock/b.age", b.version_id)
    client.set_legal_hold("lock/b.age", b.version_id, on=False)
    client.delete_version("lock/b.age", b.version_id)


def test_governance_yields_only_to_the_bypass(weed, tmp_path):
    gov = weed.new_bucket()
    vc = VaultClient(weed.settings(gov, lock_mode="GOVERNANCE"))
    path, sha = make_file(tmp_path / "g.age", 10)
    r = upload(vc, path, "g.age", sha, tmp_path)
    assert vc.head("g.age", r.version_id).lock_mode == "GOVERNANCE"
    with pytest.raises(VaultRefused, match="GOVERNANCE retention"):
        vc.delete_version("g.age", r.version_id)
    vc.delete_version("g.age", r.version_id, bypass_governance=True)
    assert not vc.head("g.age", r.version_id).exists


def test_retention_can_be_extended_never_shortened(weed, bucket, client, tmp_path):
    path, sha = make_file(tmp_path / "e.age", 10)
    r = upload(client, path, "ext/e.age", sha, tmp_path, retain_until=soon(60))
    later = soon(86400).replace(microsecond=0)
    assert client.extend_retention("ext/e.age", r.version_id, later) == later
    assert client.head("ext/e.age", r.version_id).retain_until == later
    assert client.extend_retention("ext/e.age", r.version_id, soon(120)) == later  # no-op
    bx = pytest.importorskip("botocore.exceptions")
    with pytest.raises(bx.ClientError, match="AccessDenied"):  # the server itself refuses
        weed.admin().put_object_retention(
            Bucket=bucket, Key="ext/e.age", VersionId=r.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon(120)})


def test_missing_versions(client):
    assert not client.head("nothing/here.age", "0123456789abcdef0123456789abcdef").exists
    with pytest.raises(VaultObjectMissing, match=r"nothing/here\.age"):
        client.sha256_of("nothing/here.age", "0123456789abcdef0123456789abcdef")


# --- failures ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _offline(endpoint: str, **kw) -> VaultSettings:
    return VaultSettings(endpoint=endpoint, bucket="evidence", access_key=Secret("AKX"),
                         secret_key=Secret("not-a-secret-really"), **kw)


def test_unreachable_endpoint_fails_fast():
    pytest.importorskip("boto3")
    vc = VaultClient(_offline(f"http://127.0.0.1:{_free_port()}"))  # default retries (3)
    t0 = time.monotonic()
    with pytest.raises(VaultUnreachable, match="cannot connect") as exc:
        vc.check_bucket(None)
    assert time.monotonic() - t0 < 10
    assert exc.value.retryable and exc.value.exit_code == 9


def test_a_silent_endpoint_times_out():
    pytest.importorskip("boto3")
    with socket.socket() as listener:  # accepts the connection (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        vc = VaultClient(_offline(f"http://127.0.0.1:{port}", read_timeout_s=0.5,
                                  max_attempts=2))
        t0 = time.monotonic()
        with pytest.raises(VaultUnreachable, match="no answer in time"):
            vc.check_bucket(None)
        assert time.monotonic() - t0 < 8


def test_wrong_credentials_are_refused_without_showing_them(weed, bucket):
    vc = VaultClient(weed.settings(bucket, secret_key=Secret("wrong-secret-123")))
    with pytest.raises(VaultRefused, match="SignatureDoesNotMatch") as exc:
        vc.check_bucket(None)
    assert "wrong-secret-123" not in one_line(exc)
    vc = VaultClient(weed.settings(bucket, access_key=Secret("AKNOBODY")))
    with pytest.raises(VaultRefused, match="InvalidAccessKeyId"):
        vc.check_bucket(None)


def test_clock_skew_beyond_15_minutes_is_refused(weed, bucket, client, monkeypatch):
    # botocore signs with the time it gets here; shifting it is shifting this machine's clock
    auth = pytest.importorskip("botocore.auth")
    real = auth.get_current_datetime
    monkeypatch.setattr(auth, "get_current_datetime", lambda: real() + timedelta(minutes=14))
    client.check_bucket(None)  # inside the window
    monkeypatch.setattr(auth, "get_current_datetime",
                        lambda: real() - timedelta(minutes=16))
    with pytest.raises(VaultRefused, match="clock"):
        client.check_bucket(None)
