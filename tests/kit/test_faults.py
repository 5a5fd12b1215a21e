"""Tests of the fault-injection library against real processes: private PostgreSQL and Redis,
real sockets through the proxy, real signals. Nothing here touches the shared 5432/6379."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psutil
import psycopg2
import pytest
import redis
from ccskit.context import KitContext
from ccskit.faults import kit as kit_module
from ccskit.faults import procs
from ccskit.faults.common import FaultError
from ccskit.keywords.faults import FaultKeywords
from ccskit.metrics import recorder

ROWS_BEFORE_KILL = 1000
MAX_ROWS = 20_000


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultKeywords]:
    lib = FaultKeywords(KitContext())
    yield lib
    lib.stop_all_faults()


@pytest.fixture(scope="module")
def pg_url(faults: FaultKeywords) -> str:
    return faults.start_private_postgresql(database="ccs_faults_t", alias="pg")


def _dsn(faults: FaultKeywords, port: int | None = None, app: str = "ccs-faults-test") -> str:
    port = port or faults.private_postgresql_port("pg")
    return f"host=127.0.0.1 port={port} user=postgres dbname=ccs_faults_t application_name={app}"


def _connect(faults: FaultKeywords, port: int | None = None, app: str = "ccs-faults-test"):
    conn = psycopg2.connect(_dsn(faults, port, app), connect_timeout=3)
    conn.autocommit = True
    return conn


class EchoServer:
    """Threaded echo server on 127.0.0.1: the upstream of the proxy tests."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:  # ends when the listening socket is closed
                conn, _ = self.sock.accept()
                self.accepted += 1
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def _client(address: str, timeout: float = 3.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    began = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed during the round trip"
        got += chunk
    assert got == payload
    return time.monotonic() - began


def _nothing_arrives(sock: socket.socket, wait: float = 0.5) -> bool:
    sock.settimeout(wait)
    try:
        return not sock.recv(100)  # b"" would mean closed, which is not "nothing"
    except TimeoutError:
        return True
    finally:
        sock.settimeout(3.0)


# -- private PostgreSQL -------------------------------------------------------------------


def test_private_postgres_is_private_and_accepts_writes(faults: FaultKeywords, pg_url: str) -> None:
    port = faults.private_postgresql_port("pg")
    assert port not in (5432, 6379)
    assert pg_url == f"postgresql://postgres@127.0.0.1:{port}/ccs_faults_t"
    with contextlib.closing(_connect(faults)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS probe (id int PRIMARY KEY)")
        cur.execute("INSERT INTO probe VALUES (1) ON CONFLICT DO NOTHING")
        cur.execute("SELECT count(*) FROM probe")
        assert cur.fetchone()[0] == 1


def _writer(faults: FaultKeywords, acked: list[int], stop: threading.Event) -> None:
    """Insert one row per commit until the database goes away; ``acked`` holds committed ids."""
    conn = _connect(faults)
    with contextlib.suppress(psycopg2.Error), conn.cursor() as cur:
        for i in range(MAX_ROWS):
            if stop.is_set():
                break
            cur.execute("INSERT INTO acked (id) VALUES (%s)", (i,))
            acked.append(i)  # autocommit: the INSERT returned, so it is committed
    conn.close()


def test_kill9_and_restart_keeps_every_committed_row(faults: FaultKeywords, pg_url: str) -> None:
    with contextlib.closing(_connect(faults)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE acked (id int PRIMARY KEY)")
    acked: list[int] = []
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(faults, acked, stop), daemon=True)
    writer.start()
    deadline = time.monotonic() + 20
    while len(acked) < ROWS_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= ROWS_BEFORE_KILL, f"only {len(acked)} rows written before the kill"

    old_pid = faults.kill_postgresql("pg")  # while the writer is mid-stream
    writer.join(10)
    stop.set()
    assert not writer.is_alive(), "writer did not notice the database died"
    with pytest.raises(psycopg2.OperationalError):
        _connect(faults)

    seconds = faults.restart_postgresql("pg")
    print(f"\nPostgreSQL restart after kill -9: {seconds:.3f} s, {len(acked)} rows acked")
    with contextlib.closing(_connect(faults)) as conn, conn.cursor() as cur:
        cur.execute("SELECT array_agg(id) FROM acked")
        stored = set(cur.fetchone()[0])
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"
    # At most the one in-flight INSERT may have committed without its acknowledgement.
    assert len(stored) - len(acked) <= 1
    assert faults.ctx.faults.pg("pg").pid != old_pid
    assert 0 < faults.fault_duration("db_kill") < 30


def test_kill_and_restart_are_timestamped_for_the_report(
    faults: FaultKeywords, pg_url: str
) -> None:
    events = faults.get_fault_timeline("db_kill")
    assert [e["event"] for e in events][-2:] == ["injected", "recovered"]
    assert events[-1]["t"] >= events[-2]["t"]
    reported = [f for f in recorder.faults if f["kind"] == "db_kill"]
    assert reported[-1] == events[-1], "the fault timeline did not reach the metrics recorder"
    assert faults.seconds_since_fault("db_kill") >= 0
    with pytest.raises(AssertionError, match="no 'injected' event of fault 'never_injected'"):
        faults.seconds_since_fault("never_injected")


def test_fast_stop_then_restart_on_same_port(faults: FaultKeywords, pg_url: str) -> None:
    port = faults.private_postgresql_port("pg")
    faults.stop_postgresql(mode="fast", alias="pg")
    with pytest.raises(psycopg2.OperationalError):
        _connect(faults)
    faults.restart_postgresql("pg")
    assert faults.private_postgresql_port("pg") == port
    with contextlib.closing(_connect(faults)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM probe")
        assert cur.fetchone()[0] == 1
    with pytest.raises(FaultError, match="mode must be one of"):
        faults.stop_postgresql(mode="gentle", alias="pg")


def test_pause_postgres_hangs_queries_until_resumed(faults: FaultKeywords, pg_url: str) -> None:
    conn = _connect(faults)
    with conn.cursor() as cur:
        faults.pause_postgresql("pg")
        try:
            with pytest.raises(psycopg2.OperationalError):
                # statement_timeout is enforced by the server, which is stopped: use the socket.
                conn2 = psycopg2.connect(_dsn(faults), connect_timeout=1)
                conn2.close()
        finally:
            faults.resume_postgresql("pg")
        cur.execute("SELECT 1")
        assert cur.fetchone()[0] == 1
    conn.close()
    assert 0 < faults.fault_duration("db_pause") < 30


# -- pg_terminate_backend -----------------------------------------------------------------


def test_terminate_listener_backends_hits_only_the_listener(
    faults: FaultKeywords, pg_url: str
) -> None:
    listener = _connect(faults, app="ccs-test-listener")
    pooled = _connect(faults, app="ccs-test-pool")
    with listener.cursor() as cur:
        cur.execute('LISTEN "ccs_faults_chan"')
    with pooled.cursor() as cur:
        cur.execute("SELECT 1")

    assert faults.terminate_listener_backends(database="ccs_faults_t", server="pg") == 1
    with pytest.raises(psycopg2.OperationalError), listener.cursor() as cur:
        cur.execute("SELECT 1")
    with pooled.cursor() as cur:
        cur.execute("SELECT 1")  # the pooled connection was not touched

    with pytest.raises(FaultError, match="expected at least 1 LISTEN backends"):
        faults.terminate_listener_backends(database="ccs_faults_t", server="pg")
    with pytest.raises(FaultError, match=r"expected 1 LISTEN backend\(s\)"):
        faults.wait_for_listener_backend("ccs_faults_t", "pg", timedelta(seconds=0.3))

    relistener = _connect(faults, app="ccs-test-listener")
    with relistener.cursor() as cur:
        cur.execute('LISTEN "ccs_faults_chan"')
    assert faults.wait_for_listener_backend("ccs_faults_t", "pg") == [relistener.get_backend_pid()]
    assert faults.fault_duration("db_listener_terminated") > 0
    relistener.close()
    listener.close()
    pooled.close()


def test_terminate_backends_by_application_name(faults: FaultKeywords, pg_url: str) -> None:
    victims = [_connect(faults, app="ccs-test-victim") for _ in range(3)]
    bystander = _connect(faults, app="ccs-test-bystander")
    killed = faults.terminate_database_backends(application_name="ccs-test-victim", server="pg")
    assert killed == 3
    for conn in victims:
        with pytest.raises(psycopg2.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
    with bystander.cursor() as cur:
        cur.execute("SELECT 1")
    # By database: everything but the kit's own admin connection goes, the bystander too.
    assert faults.terminate_database_backends(database="ccs_faults_t", server="pg") >= 1
    with pytest.raises(psycopg2.OperationalError), bystander.cursor() as cur:
        cur.execute("SELECT 1")
    bystander.close()


# -- TCP proxy ----------------------------------------------------------------------------


def test_proxy_cut_resets_connections_and_refuses_until_restored(
    faults: FaultKeywords, echo: EchoServer
) -> None:
    address = faults.start_tcp_proxy("cut-link", f"127.0.0.1:{echo.port}")
    sock = _client(address)
    _round_trip(sock)
    assert faults.cut_proxy("cut-link") == 1
    with pytest.raises(ConnectionResetError):
        sock.recv(10)
    with pytest.raises(ConnectionRefusedError):
        _client(address)
    faults.restore_proxy("cut-link")
    with contextlib.closing(_client(address)) as again:
        _round_trip(again)
    stats = faults.get_proxy_stats("cut-link")
    assert stats["connections_reset"] == 1 and stats["connections_total"] == 2
    assert stats["mode"] == "pass"
    sock.close()


def test_proxy_cut_breaks_a_real_postgres_session(faults: FaultKeywords, pg_url: str) -> None:
    address = faults.start_tcp_proxy("db-link", f"127.0.0.1:{faults.private_postgresql_port()}")
    port = int(address.rsplit(":", 1)[1])
    conn = _connect(faults, port=port)
    assert faults.cut_proxy("db-link") == 1
    with pytest.raises(psycopg2.OperationalError), conn.cursor() as cur:
        cur.execute("SELECT 1")
    with pytest.raises(psycopg2.OperationalError):
        _connect(faults, port=port)
    faults.restore_proxy("db-link")
    with contextlib.closing(_connect(faults, port=port)) as again, again.cursor() as cur:
        cur.execute("SELECT 1")
    assert faults.get_proxy_stats("db-link")["bytes_downstream"] > 0
    conn.close()


def test_proxy_stall_holds_bytes_and_new_connections(
    faults: FaultKeywords, echo: EchoServer
) -> None:
    address = faults.start_tcp_proxy("stall-link", f"127.0.0.1:{echo.port}")
    sock = _client(address)
    _round_trip(sock)
    accepted_before = echo.accepted
    before = faults.get_proxy_stats("stall-link")["bytes_upstream"]
    faults.stall_proxy("stall-link")
    sock.sendall(b"held")
    late = _client(address)  # accepted by the proxy, but never reaches upstream while stalled
    late.sendall(b"late")
    assert _nothing_arrives(sock) and _nothing_arrives(late, 0.1)
    assert faults.get_proxy_stats("stall-link")["bytes_upstream"] == before
    assert echo.accepted == accepted_before
    faults.restore_proxy("stall-link")
    assert sock.recv(10) == b"held"  # TCP semantics: nothing lost, only late
    assert late.recv(10) == b"late"
    sock.close()
    late.close()


def test_proxy_delay_adds_latency_per_direction(faults: FaultKeywords, echo: EchoServer) -> None:
    address = faults.start_tcp_proxy("slow-link", f"127.0.0.1:{echo.port}")
    sock = _client(address)
    baseline = min(_round_trip(sock) for _ in range(3))
    faults.delay_proxy("slow-link", timedelta(milliseconds=150))
    both = _round_trip(sock)
    faults.restore_proxy("slow-link")
    faults.delay_proxy("slow-link", timedelta(milliseconds=150), direction="upstream")
    one = _round_trip(sock)
    print(f"\nround trip: baseline {baseline * 1000:.1f} ms, 150 ms each way {both * 1000:.1f} ms")
    assert both >= 0.3 and both < 2.0
    assert one >= 0.15 and one < both

    # Latency, not a throughput cap: 20 pipelined chunks take about one delay, not twenty.
    began = time.monotonic()
    for i in range(20):
        sock.sendall(b"%02d" % i)
        time.sleep(0.005)  # separate chunks on the wire
    expected = b"".join(b"%02d" % i for i in range(20))
    got = b""
    while len(got) < len(expected):
        got += sock.recv(100)
    assert got == expected
    assert time.monotonic() - began < 1.5
    faults.restore_proxy("slow-link")
    assert _round_trip(sock) < 0.1
    sock.close()


def test_proxy_drop_one_direction(faults: FaultKeywords, echo: EchoServer) -> None:
    address = faults.start_tcp_proxy("lossy-link", f"127.0.0.1:{echo.port}")
    sock = _client(address)
    _round_trip(sock)
    faults.drop_proxy_direction("lossy-link", "downstream")
    sock.sendall(b"lost")
    assert _nothing_arrives(sock)
    stats = faults.get_proxy_stats("lossy-link")
    assert stats["dropped_downstream"] == 4 and stats["bytes_upstream"] == 8  # "ping" + "lost"
    faults.restore_proxy("lossy-link")
    _round_trip(sock, b"kept")  # the dropped echo never shows up later
    with pytest.raises(FaultError, match="drop one direction"):
        faults.drop_proxy_direction("lossy-link", "both")
    sock.close()


def test_proxy_refuses_non_loopback_upstream(faults: FaultKeywords) -> None:
    with pytest.raises(FaultError, match="loopback only"):
        faults.start_tcp_proxy("far", "10.0.0.1:80")


# -- private Redis ------------------------------------------------------------------------


def test_private_redis_kill_restart_pause_resume(faults: FaultKeywords) -> None:
    url = faults.start_private_redis("redis")
    port = faults.private_redis_port("redis")
    assert port not in (5432, 6379) and url == f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    client.set("k", "v")
    faults.kill_redis("redis")
    with pytest.raises(redis.ConnectionError):
        client.ping()
    faults.restart_redis("redis")
    assert faults.private_redis_port("redis") == port
    assert client.get("k") is None  # nothing persisted: a restart is an empty Redis

    faults.pause_redis("redis")
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        faults.resume_redis("redis")
    fresh = redis.Redis.from_url(url, socket_timeout=2)
    assert fresh.ping()
    assert 0 < faults.fault_duration("redis_pause") < 30
    client.close()
    fresh.close()


# -- any process --------------------------------------------------------------------------


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"])


def test_pause_resume_and_terminate_a_process(faults: FaultKeywords) -> None:
    proc = _sleeper()
    faults.pause_process(proc.pid)
    assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
    faults.resume_process(proc.pid)
    assert psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED
    faults.kill_process(proc.pid, "TERM")
    assert faults.wait_for_process_exit(proc.pid, timedelta(seconds=5)) == -15
    with pytest.raises(FaultError, match="expected a running process"):
        faults.kill_process(proc.pid)


def test_processes_of_shared_services_are_refused(
    faults: FaultKeywords, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend the private cluster is a shared one, so a broken guard harms nothing real.
    port = faults.private_postgresql_port("pg")
    monkeypatch.setattr(kit_module, "SHARED_PORTS", frozenset({port}))
    postmaster = faults.ctx.faults.pg("pg").pid
    with pytest.raises(FaultError, match="refusing to signal"):
        faults.kill_process(postmaster)
    with pytest.raises(FaultError, match="refusing to signal"):
        faults.pause_process(procs.descendants(postmaster)[0])  # a backend of it
    assert procs.is_alive(postmaster) and not procs.is_stopped(postmaster)
    with pytest.raises(FaultError, match="give a database or an application_name"):
        faults.terminate_database_backends(server="pg")


def test_kill9_a_process_and_wait_timeout_message(faults: FaultKeywords) -> None:
    proc = _sleeper()
    with pytest.raises(FaultError, match=r"expected process \d+ to exit within"):
        faults.wait_for_process_exit(proc.pid, timedelta(seconds=0.2))
    faults.kill_process(proc.pid)
    assert faults.wait_for_process_exit(proc.pid, timedelta(seconds=5)) == -9
    assert faults.get_fault_timeline("process_kill")[-1]["detail"] == f"pid:{proc.pid} SIGKILL"


# -- teardown -----------------------------------------------------------------------------


def test_stop_all_faults_leaves_nothing_behind() -> None:
    lib = FaultKeywords(KitContext())
    lib.start_private_postgresql(alias="tmp-pg")
    lib.start_private_redis(alias="tmp-redis")
    pg, rd = lib.ctx.faults.pg("tmp-pg"), lib.ctx.faults.rd("tmp-redis")
    pids, dirs = [pg.pid, rd.pid], [pg.base_dir, rd.base_dir]
    address = lib.start_tcp_proxy("tmp-link", f"127.0.0.1:{rd.port}")
    lib.pause_redis("tmp-redis")
    lib.stall_proxy("tmp-link")
    lib.stop_all_faults()
    assert not any(procs.is_alive(pid) for pid in pids)
    assert not any(d.exists() for d in dirs)
    with pytest.raises(ConnectionRefusedError):
        _client(address)
    assert {e["kind"] for e in lib.get_fault_timeline() if e["event"] == "recovered"} >= {
        "proxy_stall"
    }
