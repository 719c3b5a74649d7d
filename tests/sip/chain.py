"""A real SIP chain on loopback: Kamailio with the shipped config and baresip phones.

Used by ``tests/sip/test_kamailio_chain.py`` and ``bench/sip_latency.py``. Every process is
started here, remembered by its PID, and stopped by that PID (SIGTERM, wait, SIGKILL).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app import migrate
from app.customers.models import Account, Customer, CustomerPhone
from app.db import create_engine
from app.queues import service as queues
from app.users import service as users

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "telephony" / "kamailio" / "kamailio.cfg"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")
REQUIRED_BINARIES = ("kamailio", "baresip")

# The world the chain runs in: one queue with one DID, one agent, two known customers.
KAMAILIO_TOKEN = "sip-chain-token"
PASSWORD = "sip-chain-password"
DID = "+448081570001"  # the sales queue's number; Kamailio rings extension 201 for it
EXTENSION = "201"
CALLER = "+447700900123"
CALLER_NAME = "Jane Caller"
PAI_CALLER = "+447700900456"  # a second customer, reached only through P-Asserted-Identity
PAI_CALLER_NAME = "Pat Asserted"


# Kamailio installs into /usr/sbin, which a non-root PATH may lack.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def binary(name: str) -> str | None:
    """The full path of ``name`` (PATH, then /usr/sbin and /sbin), or None."""
    return shutil.which(name, path=_SEARCH_PATH)


def missing_binaries() -> list[str]:
    """The SIP binaries this chain needs that are not installed."""
    return [name for name in REQUIRED_BINARIES if binary(name) is None]


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free now (its TCP twin too: Kamailio may open both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
        with socket.socket() as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM the process by its PID, wait, then SIGKILL if it is still there."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Kamailio:
    """Kamailio running EXACTLY the shipped config, parameterised with ``-A`` defines."""

    def __init__(
        self,
        workdir: Path,
        *,
        screenpop_url: str,
        token: str,
        did_routes: Mapping[str, str],
        ring_timeout_ms: int = 30000,
    ) -> None:
        self.workdir = workdir
        self.port = free_udp_port()
        self.screenpop_url = screenpop_url
        self.token = token
        self.did_routes = dict(did_routes)
        self.ring_timeout_ms = ring_timeout_ms
        self.log_path = workdir / "kamailio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        routes = ";".join(f"{did}={ext}" for did, ext in self.did_routes.items())
        return [
            binary("kamailio") or "kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-n", "2",
            "-Y", str(self.workdir),
            "-A", f"LISTEN=udp:127.0.0.1:{self.port}",
            "-A", f'SCREENPOP_URL="{self.screenpop_url}"',
            "-A", f'SCREENPOP_TOKEN="{self.token}"',
            "-A", f'DID_ROUTES="{routes}"',
            "-A", f"RING_TIMEOUT_MS={self.ring_timeout_ms}",
        ]  # fmt: skip

    def start(self) -> Kamailio:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        # Ready when it answers a keepalive OPTIONS on its SIP port.
        wait_for(self._answers_options, 10, f"kamailio on {self.host} (log: {self.log_path})")
        return self

    def _answers_options(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited early; see {self.log_path}")
        branch = f"z9hG4bK{time.monotonic_ns()}"
        request = (
            f"OPTIONS sip:{self.host} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch};rport\r\n"
            "Max-Forwards: 5\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"
            f"To: <sip:{self.host}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.bind(("127.0.0.1", 0))
            try:
                sock.sendto(request.encode(), ("127.0.0.1", self.port))
                reply = sock.recv(4096)
            except OSError:
                return False
        return reply.startswith(b"SIP/2.0 200")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class PhoneEvent:
    """One ctrl_tcp event from baresip (``CALL_INCOMING``, ``CALL_ESTABLISHED``...)."""

    type: str
    data: dict[str, Any]
    at: float


class Baresip:
    """A baresip user agent with one account, controlled over ``ctrl_tcp``."""

    def __init__(self, workdir: Path, *, account: str, name: str) -> None:
        self.workdir = workdir
        self.account = account
        self.name = name
        self.sip_port = free_udp_port()
        self.ctrl_port = free_tcp_port()
        self.log_path = workdir / "baresip.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: Queue[PhoneEvent] = Queue()
        self._responses: Queue[dict[str, Any]] = Queue()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._token = 0

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rtp = free_udp_port()
        (self.workdir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{self.sip_port}\n"
            f"rtp_ports {rtp}-{rtp + 9}\n"
            f"module_path {BARESIP_MODULES}\n"
            "module g711.so\n"
            "module_tmp account.so\n"
            "module_app menu.so\n"
            "module_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
        )
        (self.workdir / "accounts").write_text(self.account + "\n")
        (self.workdir / "contacts").write_text("")

    def start(self) -> Baresip:
        self._write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [binary("baresip") or "baresip", "-4", "-n", "127.0.0.1", "-f", str(self.workdir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
        )  # fmt: skip
        wait_for(self._connect, 10, f"baresip {self.name} ctrl_tcp (log: {self.log_path})")
        self._reader = threading.Thread(target=self._read, name=f"baresip-{self.name}")
        self._reader.daemon = True
        self._reader.start()
        return self

    def _connect(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"baresip {self.name} exited early; see {self.log_path}")
        try:
            self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.3)
        except OSError:
            return False
        self._sock.settimeout(None)
        return True

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            # Netstrings: "<length>:<payload>,".
            while b":" in buffer:
                head, _, rest = buffer.partition(b":")
                length = int(head)
                if len(rest) < length + 1:
                    break
                payload, buffer = rest[:length], rest[length + 1 :]
                message = json.loads(payload)
                if message.get("response"):
                    self._responses.put(message)
                elif message.get("event"):
                    self.events.put(PhoneEvent(message.get("type", ""), message, time.monotonic()))

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a ctrl_tcp command (``dial``, ``accept``, ``hangup``) and return its response."""
        assert self._sock is not None
        with self._lock:
            self._token += 1
            token = str(self._token)
            payload = json.dumps({"command": command, "params": params, "token": token}).encode()
            self._sock.sendall(str(len(payload)).encode() + b":" + payload + b",")
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"baresip {self.name}: no response to {command!r}")
                response = self._responses.get(timeout=remaining)
                if response.get("token") == token:
                    return response

    def wait_event(self, *types: str, timeout: float = 10.0) -> PhoneEvent:
        """The next event of one of ``types``; other events on the way are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"baresip {self.name}: no {'/'.join(types)} event")
            try:
                event = self.events.get(timeout=remaining)
            except Empty:
                continue
            if event.type in types:
                return event

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the account's registration is confirmed (``reginfo`` says OK)."""

        def registered() -> bool:
            return " OK " in self.command("reginfo").get("data", "").replace("\x1b[32m", " ")

        wait_for(registered, timeout, f"baresip {self.name} to register")

    def drain_events(self) -> list[PhoneEvent]:
        drained: list[PhoneEvent] = []
        while True:
            try:
                drained.append(self.events.get_nowait())
            except Empty:
                return drained

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        # SIGTERM makes baresip unregister first, which takes a moment.
        stop_process(self.proc, timeout=10)


class RawCaller:
    """A minimal SIP caller over UDP that can send exactly the headers a test needs.

    baresip cannot add a P-Asserted-Identity, and the benchmark wants the moment the INVITE
    leaves; this UAC sends one INVITE, watches the replies, and CANCELs or BYEs it.
    """

    def __init__(self, proxy: str, *, from_user: str, pai: str | None = None) -> None:
        host, _, port = proxy.partition(":")
        self.proxy = (host, int(port))
        self.from_user = from_user
        self.pai = pai
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def _headers(self, method: str, ruri: str, call: RawCall, branch: str, cseq: int) -> str:
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.from_user}@127.0.0.1>;tag={call.from_tag}",
            f"To: <{ruri}>" + (f";tag={call.to_tag}" if call.to_tag and method != "CANCEL" else ""),
            f"Call-ID: {call.call_id}",
            f"CSeq: {cseq} {method}",
        ]
        return "\r\n".join(lines) + "\r\n"

    def invite(self, dialed: str) -> RawCall:
        """Send an INVITE for ``dialed`` through the proxy; returns at once."""
        self._seq += 1
        stamp = f"{os.getpid()}-{time.monotonic_ns()}-{self._seq}"
        call = RawCall(
            call_id=f"raw-{stamp}@127.0.0.1",
            from_tag=f"ft{self._seq}",
            branch=f"z9hG4bK-inv-{stamp}",
            ruri=f"sip:{dialed}@{self.proxy[0]}:{self.proxy[1]}",
        )
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        head = self._headers("INVITE", call.ruri, call, call.branch, 1)
        head += f"Contact: <sip:{self.from_user}@127.0.0.1:{self.port}>\r\n"
        if self.pai:
            head += f"P-Asserted-Identity: {self.pai}\r\n"
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        call.invite = (head + sdp).encode()
        call.sent_at = time.monotonic()
        self.sock.sendto(call.invite, self.proxy)
        return call

    def retransmit(self, call: RawCall) -> None:
        """Send the very same INVITE again, as a UAC does when no reply came in time."""
        self.sock.sendto(call.invite, self.proxy)

    def wait_status(self, call: RawCall, codes: range, timeout: float = 10.0) -> int:
        """Read replies for ``call`` until one with a status in ``codes``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {codes.start}..{codes.stop - 1} reply for {call.call_id}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536).decode(errors="replace")
            if f"Call-ID: {call.call_id}" not in data or not data.startswith("SIP/2.0 "):
                continue
            status = int(data.split(" ", 2)[1])
            cseq = next(line for line in data.split("\r\n") if line.startswith("CSeq:"))
            if "INVITE" in cseq and status >= 200:
                call.to_tag = _tag_of(data)
                self._ack(call, status)
            if status in codes:
                return status

    def cancel(self, call: RawCall) -> None:
        """CANCEL the ringing INVITE (the caller gives up)."""
        head = self._headers("CANCEL", call.ruri, call, call.branch, 1)
        self.sock.sendto((head + "Content-Length: 0\r\n\r\n").encode(), self.proxy)

    def _ack(self, call: RawCall, status: int) -> None:
        if status >= 300:
            # ACK for a negative final reply: same branch, hop by hop.
            head = self._headers("ACK", call.ruri, call, call.branch, 1)
            self.sock.sendto((head + "Content-Length: 0\r\n\r\n").encode(), self.proxy)


@dataclass
class RawCall:
    call_id: str
    from_tag: str
    branch: str
    ruri: str
    to_tag: str | None = None
    sent_at: float = 0.0
    invite: bytes = b""


def _tag_of(message: str) -> str | None:
    for line in message.split("\r\n"):
        if line.lower().startswith(("to:", "t:")) and ";tag=" in line:
            return line.split(";tag=", 1)[1].split(";", 1)[0].strip()
    return None


async def seed_database(url: str) -> dict[str, int]:
    """Schema, two customers with known numbers, the sales queue, alice (201) and sam."""
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    ids: dict[str, int] = {}
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            for number, name in ((CALLER, CALLER_NAME), (PAI_CALLER, PAI_CALLER_NAME)):
                customer = Customer(name=name, external_ref=f"sip-{number}")
                session.add(customer)
                await session.flush()
                session.add(
                    CustomerPhone(
                        customer_id=customer.id, raw=number, e164=number, last_digits=number[-9:]
                    )
                )
                session.add(Account(customer_id=customer.id, balance=Decimal("12.50")))
                ids[number] = customer.id
            await queues.upsert_queue(session, name="sales", numbers=[DID])
            await users.upsert_user(
                session,
                username="alice",
                role="agent",
                password=PASSWORD,
                extension=EXTENSION,
                queues=["sales"],
            )
            await users.upsert_user(
                session, username="sam", role="supervisor", password=PASSWORD, queues=["sales"]
            )
            await session.commit()
    finally:
        await engine.dispose()
    return ids


class AgentSocket:
    """``WS /ws/agent`` read on a thread, so the test can block on phones meanwhile."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.conn: ClientConnection = connect(f"{ws_url}/ws/agent?token={token}", open_timeout=5)
        self.frames: Queue[tuple[float, dict[str, Any]]] = Queue()
        self.seen: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self.conn:
                self.frames.put((time.monotonic(), json.loads(raw)))
        except (ConnectionClosed, OSError):
            return

    def next(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 10.0
    ) -> tuple[float, dict[str, Any]]:
        """The first frame (arrival time, message) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} on the agent websocket; saw {self.seen}")
            try:
                at, message = self.frames.get(timeout=remaining)
            except Empty:
                continue
            self.seen.append(message)
            if predicate(message):
                return at, message

    def close(self) -> None:
        self.conn.close()
        self._thread.join(5)
