"""FreeSWITCH ESL: event mapping, and the connector against a scripted peer speaking real ESL."""

from __future__ import annotations

import asyncio
import contextlib

from telephony_helpers import NOW, ScriptedPeer, eventually, fixture_bytes

from telephony.events import OFFER_WITHDRAWN, CallEvent
from telephony.freeswitch import (
    SUBSCRIPTION,
    EslConnector,
    esl_event_to_call_events,
    parse_plain_event,
)

ALICE = "+447700900123"
MEMBER = "3f1c2b4a-5d6e-4f70-8192-a3b4c5d6e7f8"


def bodies() -> list[str]:
    """The fixture call's ``text/event-plain`` bodies (headers + blank line)."""
    text = fixture_bytes("freeswitch_callcenter_call.esl").decode()
    return [part.strip("\n") + "\n\n" for part in text.split("%%\n")]


def frame(body: str) -> bytes:
    data = body.encode()
    return f"Content-Length: {len(data)}\nContent-Type: text/event-plain\n\n".encode() + data


class EslPeer(ScriptedPeer):
    """Speaks ESL inbound mode: auth/request, auth, event subscription, command replies."""

    password = "ClueCon"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Content-Type: auth/request\n\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                command = (await reader.readuntil(b"\n\n")).decode().strip()
                self.received.append(command)
                if command.startswith("auth "):
                    ok = command == f"auth {self.password}"
                    self.logins.append({"command": command})
                    reply = "+OK accepted" if ok else "-ERR invalid"
                    writer.write(f"Content-Type: command/reply\nReply-Text: {reply}\n\n".encode())
                    if not ok:
                        await writer.drain()
                        writer.close()
                        return
                elif command.startswith("event plain"):
                    writer.write(
                        b"Content-Type: command/reply\n"
                        b"Reply-Text: +OK event listener enabled plain\n\n"
                    )
                else:
                    writer.write(
                        b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
                    )
                await writer.drain()


def test_mapping_of_a_callcenter_call() -> None:
    events = [
        e
        for body in bodies()
        for e in esl_event_to_call_events(
            parse_plain_event(body), default_region="GB", received_at=NOW
        )
    ]
    assert [(e.kind, e.agent) for e in events] == [
        ("queued", None),  # CHANNEL_CREATE inbound
        ("queued", None),  # member-queue-start
        ("offered", "1002"),
        ("queued", "1002"),  # bridge-agent-fail: offer withdrawn
        ("offered", "1001"),
        ("answered", "1001"),
        ("ended", "1001"),
        ("ended", None),  # CHANNEL_HANGUP_COMPLETE
    ]
    assert {e.call_id for e in events} == {MEMBER}
    assert all(e.caller.e164 == ALICE for e in events)
    assert events[1].queue == "support" and events[1].caller_name == "Alice Smith"
    assert events[3].attributes[OFFER_WITHDRAWN] is True
    assert events[0].dialed == "+442079460000"
    assert events[2].occurred_at.timestamp() == 1746090004
    assert len({e.event_id for e in events}) == len(events)


def test_abandon_and_ignored_events() -> None:
    abandon = parse_plain_event(
        "Event-Name: CUSTOM\nEvent-Subclass: callcenter%3A%3Ainfo\nCC-Action: member-queue-end\n"
        "CC-Cause: Cancel\nCC-Cancel-Reason: BREAK_OUT\nCC-Queue: support%40default\n"
        f"CC-Member-Session-UUID: {MEMBER}\nCC-Member-CID-Number: 07700900123\n\n"
    )
    [event] = esl_event_to_call_events(abandon, default_region="GB", received_at=NOW)
    assert event.kind == "abandoned" and event.attributes["cancel_reason"] == "BREAK_OUT"
    status = parse_plain_event(
        "Event-Name: CUSTOM\nEvent-Subclass: callcenter%3A%3Ainfo\nCC-Action: agent-status-change\n"
        "CC-Agent: 1001%40default\nCC-Agent-Status: Available\n\n"
    )
    assert esl_event_to_call_events(status, default_region="GB", received_at=NOW) == []
    internal = parse_plain_event(
        "Event-Name: CHANNEL_CREATE\nUnique-ID: x\nCall-Direction: inbound\n"
        "Caller-Caller-ID-Number: 1001\n\n"
    )
    assert esl_event_to_call_events(internal, default_region="GB", received_at=NOW) == []


async def test_connector_survives_a_freeswitch_restart_mid_call() -> None:
    peer = await EslPeer().start()
    received: list[CallEvent] = []

    async def on_event(event: CallEvent) -> None:
        received.append(event)

    connector = EslConnector(
        f"esl://:{EslPeer.password}@127.0.0.1:{peer.port}",
        on_event,
        "GB",
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: connector.logins == 1)
        assert peer.received[1] == SUBSCRIPTION
        assert "CUSTOM callcenter::info" in peer.received[1]
        events = bodies()
        for body in events[:4]:
            await peer.send(frame(body))
        await eventually(lambda: len(received) == 4)

        await peer.kill()
        await asyncio.sleep(0.3)
        peer2 = await EslPeer(port=peer.port).start()
        await eventually(lambda: connector.logins == 2)
        # Two events in one TCP write: framing must come from Content-Length, not reads.
        await peer2.send(frame(events[4]) + frame(events[5]))
        for body in events[6:]:
            await peer2.send(frame(body))
        await eventually(lambda: len(received) == 8)
        await peer2.send(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
        await eventually(lambda: connector.logins == 3)  # FreeSWITCH said goodbye; we came back
        await peer2.kill()
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)

    assert [e.kind for e in received] == [
        "queued",
        "queued",
        "offered",
        "queued",
        "offered",
        "answered",
        "ended",
        "ended",
    ]
    assert {e.full_call_id for e in received} == {f"freeswitch:{MEMBER}"}


async def test_connector_retries_refused_auth() -> None:
    peer = await EslPeer().start()
    connector = EslConnector(
        f"esl://:wrong@127.0.0.1:{peer.port}",
        lambda event: asyncio.sleep(0),
        "GB",
        backoff_initial=0.02,
        backoff_max=0.05,
    )
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: len(peer.logins) >= 3)
        assert connector.logins == 0
        assert all(login["command"] == "auth wrong" for login in peer.logins)
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
        await peer.kill()


def test_default_password_is_freeswitch_default() -> None:
    connector = EslConnector("esl://127.0.0.1", lambda e: asyncio.sleep(0), "GB")
    assert (connector.password, connector.port) == ("ClueCon", 8021)
