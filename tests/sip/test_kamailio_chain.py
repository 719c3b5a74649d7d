"""End to end through real telephony: baresip caller -> Kamailio (the shipped kamailio.cfg) ->
http_client webhook -> screenpop (real uvicorn) -> the agent's websocket; Kamailio also rings a
baresip "agent phone" registered as the agent's extension.

Needs ``kamailio`` (with kamailio-utils-modules) and ``baresip`` on PATH. Without them the tests
skip, unless ``SCREENPOP_REQUIRE_SIP`` is set (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.sip.chain import (
    CALLER,
    CALLER_NAME,
    DID,
    EXTENSION,
    KAMAILIO_CFG,
    KAMAILIO_TOKEN,
    PAI_CALLER,
    PAI_CALLER_NAME,
    PASSWORD,
    AgentSocket,
    Baresip,
    Kamailio,
    RawCaller,
    missing_binaries,
    seed_database,
)
from tests.support.databases import sqlite_url
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(240)

WAIT = 10.0


def require_sip() -> None:
    missing = missing_binaries()
    if not missing:
        return
    message = (
        f"SIP chain test needs {' and '.join(missing)} on PATH "
        "(apt-get install kamailio kamailio-utils-modules kamailio-extra-modules baresip-core)"
    )
    if os.environ.get("SCREENPOP_REQUIRE_SIP", "") not in ("", "0"):
        pytest.fail(message + "; SCREENPOP_REQUIRE_SIP is set")
    pytest.skip(message)


def is_pop(call_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == "pop" and m.get("call", {}).get("id") == call_id


def is_state(call_id: str, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m.get("type") == "call.state" and m.get("call_id") == call_id and m.get("state") == state
    )


@dataclass
class Chain:
    server: ServerProcess
    kamailio: Kamailio
    agent_phone: Baresip
    caller_phone: Baresip
    customer_ids: dict[str, int]
    tmp: Path
    sockets: list[AgentSocket] = field(default_factory=list)

    def login(self, username: str) -> str:
        response = httpx.post(
            f"{self.server.url}/api/auth/login",
            json={"username": username, "password": PASSWORD},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def agent_socket(self) -> AgentSocket:
        sock = AgentSocket(self.server.ws_url, self.login("alice"))
        self.sockets.append(sock)
        return sock

    def journal(self, call_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.server.url}/api/calls/{call_id}",
            headers={"Authorization": f"Bearer {self.login('sam')}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def dial(self) -> str:
        """The caller phone dials the sales DID; returns screenpop's call id once 201 rings."""
        self.agent_phone.drain_events()
        self.caller_phone.drain_events()
        response = self.caller_phone.command("dial", f"sip:{DID}@{self.kamailio.host}")
        assert response.get("ok"), response
        incoming = self.agent_phone.wait_event("CALL_INCOMING", timeout=WAIT)
        return f"kamailio:{incoming.data['id']}"

    def idle(self) -> None:
        """Both phones back to no call (after a hang-up or a rejection)."""
        self.caller_phone.wait_event("CALL_CLOSED", timeout=WAIT)
        time.sleep(0.2)  # let the agent phone's own CALL_CLOSED arrive before the next dial


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    require_sip()
    tmp = tmp_path_factory.mktemp("sip-chain")
    url = sqlite_url(tmp)
    customer_ids = asyncio.run(seed_database(url))
    server = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_KAMAILIO_TOKEN": KAMAILIO_TOKEN,
        }
    )
    kamailio = Kamailio(
        tmp / "kamailio",
        screenpop_url=f"{server.url}/telephony/kamailio/events",
        token=KAMAILIO_TOKEN,
        did_routes={DID: EXTENSION},
    )
    agent_phone = Baresip(
        tmp / "agent-phone",
        account=f"<sip:{EXTENSION}@{kamailio.host};transport=udp>;regint=600;answermode=manual",
        name="agent-phone",
    )
    caller_phone = Baresip(
        tmp / "caller-phone",
        account=f'"{CALLER_NAME}" <sip:{CALLER}@127.0.0.1;transport=udp>;regint=0',
        name="caller-phone",
    )
    started: list[Any] = []
    built: Chain | None = None
    try:
        for process in (server, kamailio, agent_phone, caller_phone):
            process.start()
            started.append(process)
        agent_phone.wait_registered()
        built = Chain(server, kamailio, agent_phone, caller_phone, customer_ids, tmp)
        yield built
    finally:
        if built is not None:
            for sock in built.sockets:
                sock.close()
            built.server.stop()  # a test may have replaced it with a restarted one
        for process in reversed(started):
            process.stop()


def test_shipped_config_is_valid_with_test_overrides(tmp_path: Path) -> None:
    require_sip()
    kamailio = Kamailio(
        tmp_path, screenpop_url="http://127.0.0.1:9/x", token="t", did_routes={DID: EXTENSION}
    )
    command = [arg for arg in kamailio.command() if arg not in ("-DD", "-E")]
    result = subprocess.run(
        [command[0], "-c", *command[1:]], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1 [127.0.0.1]:{kamailio.port}" in result.stdout + result.stderr
    assert kamailio.command()[2] == str(KAMAILIO_CFG)


def test_pop_while_ringing_then_answered_then_ended(chain: Chain) -> None:
    ws = chain.agent_socket()
    call_id = chain.dial()

    # The agent phone is ringing and nobody has told it to accept: the pop must be here already.
    _, pop = ws.next(is_pop(call_id), "pop while the phone rings")
    assert not [e for e in chain.caller_phone.drain_events() if e.type == "CALL_ESTABLISHED"]
    assert pop["call"]["queue"] == "sales"
    assert pop["call"]["caller"]["e164"] == CALLER
    assert pop["match"]["kind"] == "single"
    assert pop["customer"]["name"] == CALLER_NAME

    assert chain.agent_phone.command("accept").get("ok")
    chain.caller_phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
    ws.next(is_state(call_id, "answered"), "call.state answered")

    # The agent hangs up: the BYE goes upstream, and the roles must still come out right.
    assert chain.agent_phone.command("hangup").get("ok")
    ws.next(is_state(call_id, "ended"), "call.state ended")
    chain.idle()

    call = chain.journal(call_id)
    assert call["state"] == "ended"
    assert call["agent"] == "alice" and call["queue"] == "sales"
    assert call["caller"]["e164"] == CALLER
    kinds = [event["kind"] for event in call["events"]]
    assert kinds == ["offered", "answered", "ended"], call["events"]
    ended_raw = call["events"][-1]["raw"]
    assert (ended_raw["from_user"], ended_raw["to_user"]) == (CALLER, DID)
    assert ended_raw["ruri_user"] == EXTENSION


def test_caller_hangs_up_while_ringing_is_abandoned_and_pop_withdrawn(chain: Chain) -> None:
    ws = chain.agent_socket()
    call_id = chain.dial()
    ws.next(is_pop(call_id), "pop while the phone rings")

    assert chain.caller_phone.command("hangup").get("ok")  # CANCEL while ringing
    _, withdrawal = ws.next(is_state(call_id, "abandoned"), "call.state abandoned")
    assert withdrawal.get("withdrawn") is True, withdrawal  # the pop is taken off the screen
    chain.agent_phone.wait_event("CALL_CLOSED", timeout=WAIT)
    time.sleep(0.2)

    call = chain.journal(call_id)
    assert call["state"] == "abandoned"
    assert [event["kind"] for event in call["events"]] == ["offered", "abandoned"]


def test_agent_rejects_then_pop_is_withdrawn(chain: Chain) -> None:
    ws = chain.agent_socket()
    call_id = chain.dial()
    ws.next(is_pop(call_id), "pop while the phone rings")

    assert chain.agent_phone.command("hangup").get("ok")  # a ringing call: 486 Busy Here
    _, withdrawal = ws.next(
        lambda m: m.get("type") == "call.state" and m.get("call_id") == call_id, "withdrawal"
    )
    assert withdrawal.get("withdrawn") is True, withdrawal
    chain.idle()

    call = chain.journal(call_id)
    kinds = [event["kind"] for event in call["events"]]
    # "unanswered" is journaled as the offer withdrawn (kind "queued"); the caller got the
    # failure, so Kamailio also reports the call ended.
    assert kinds == ["offered", "queued", "ended"], call["events"]
    assert call["events"][1]["raw"]["event"] == "unanswered"
    # Ended without ever being answered: the calls state machine counts it as abandoned.
    assert call["state"] == "abandoned"


def test_caller_from_p_asserted_identity_and_retransmissions_absorbed(chain: Chain) -> None:
    ws = chain.agent_socket()
    caller = RawCaller(
        chain.kamailio.host,
        from_user="anonymous",
        pai=f"<sip:{PAI_CALLER}@carrier.example;user=phone>",
    )
    try:
        chain.agent_phone.drain_events()
        call = caller.invite(DID)
        caller.retransmit(call)
        caller.retransmit(call)
        caller.wait_status(call, range(180, 190))
        call_id = f"kamailio:{call.call_id}"
        _, pop = ws.next(is_pop(call_id), "pop for the PAI caller")
        assert pop["call"]["caller"]["e164"] == PAI_CALLER
        assert pop["customer"]["name"] == PAI_CALLER_NAME
        caller.cancel(call)
        assert caller.wait_status(call, range(400, 700)) == 487
        ws.next(is_state(call_id, "abandoned"), "call.state abandoned")
        chain.agent_phone.wait_event("CALL_CLOSED", timeout=WAIT)
    finally:
        caller.close()
    # Three copies of the INVITE, one transaction, one "offered".
    assert [event["kind"] for event in chain.journal(call_id)["events"]] == [
        "offered",
        "abandoned",
    ]


def test_service_slow_or_down_calls_still_ring_and_pop_again_when_back(chain: Chain) -> None:
    port = chain.server.port
    chain.server.stop()

    # Down (connection refused): the call rings through, the agent answers, nothing crashes.
    started = time.monotonic()
    chain.dial()
    assert time.monotonic() - started < 2.0  # a refused post costs nothing
    assert chain.agent_phone.command("accept").get("ok")
    chain.caller_phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
    assert chain.caller_phone.command("hangup").get("ok")
    chain.idle()

    # Hung (accepts, never answers): ringing is late by at most the 1 s http_client timeout.
    with HungListener(port) as hung:
        started = time.monotonic()
        chain.dial()
        assert time.monotonic() - started < 3.0
        assert chain.agent_phone.command("accept").get("ok")
        chain.caller_phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
        assert chain.caller_phone.command("hangup").get("ok")
        chain.idle()
    assert hung.accepted, "Kamailio never tried to post to the hung service"
    assert chain.kamailio.proc is not None and chain.kamailio.proc.poll() is None
    log = chain.kamailio.log_text()
    assert "screenpop: offered" in log and "not accepted" in log
    assert "timed out" in log

    # Back: the next call pops again, with nothing restarted on the SIP side.
    chain.server = ServerProcess(chain.server.env, port=port).start()
    ws = chain.agent_socket()
    call_id = chain.dial()
    _, pop = ws.next(is_pop(call_id), "pop after the service came back")
    assert pop["customer"]["name"] == CALLER_NAME
    assert chain.caller_phone.command("hangup").get("ok")
    ws.next(is_state(call_id, "abandoned"), "call.state abandoned")
    chain.agent_phone.wait_event("CALL_CLOSED", timeout=WAIT)


class HungListener:
    """A TCP listener on ``port`` that accepts connections and never answers them."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def __enter__(self) -> HungListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
