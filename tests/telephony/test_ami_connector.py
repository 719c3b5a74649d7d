"""Asterisk AMI: event mapping, and the connector against a scripted peer speaking real AMI."""

from __future__ import annotations

import asyncio
import contextlib

from telephony_helpers import NOW, ScriptedPeer, eventually, fixture_bytes

from telephony.asterisk import AmiConnector, ami_event_to_call_events, parse_ami_message
from telephony.events import OFFER_WITHDRAWN, TRANSFER_TO, CallEvent

ALICE = "+447700900123"
LINKEDID = "1746090000.1"


def call_blocks() -> list[bytes]:
    """The fixture call, one CRLF-terminated AMI event block each."""
    text = fixture_bytes("asterisk_queue_call.ami")
    return [block + b"\r\n\r\n" for block in text.split(b"\r\n\r\n") if block.strip()]


def map_block(block: bytes) -> list[CallEvent]:
    return ami_event_to_call_events(
        parse_ami_message(block.decode()), default_region="GB", received_at=NOW
    )


class AmiPeer(ScriptedPeer):
    """Speaks AMI: banner, Login -> Response, answers Ping; events are pushed by the test."""

    secret = "s3cret"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/7.0.3\r\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.received.append(block)
                action = parse_ami_message(block)
                action_id = action.get("ActionID", "")
                if action.get("Action") == "Login":
                    ok = (
                        action.get("Username") == "screenpop"
                        and action.get("Secret") == self.secret
                    )
                    self.logins.append(action)
                    response = "Success" if ok else "Error"
                    message = "Authentication accepted" if ok else "Authentication failed"
                    writer.write(
                        f"Response: {response}\r\nActionID: {action_id}\r\n"
                        f"Message: {message}\r\n\r\n".encode()
                    )
                    if not ok:
                        writer.close()
                        return
                    writer.write(
                        b"Event: FullyBooted\r\nPrivilege: system,all\r\n"
                        b"Status: Fully Booted\r\n\r\n"
                    )
                elif action.get("Action") == "Ping":
                    writer.write(
                        (
                            f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n"
                        ).encode()
                    )
                await writer.drain()


def test_mapping_of_a_queue_call() -> None:
    events = [e for block in call_blocks() for e in map_block(block)]
    assert [(e.kind, e.agent) for e in events] == [
        ("queued", None),  # Newchannel
        ("queued", None),  # QueueCallerJoin
        ("offered", "202"),
        ("queued", "202"),  # AgentRingNoAnswer: offer withdrawn
        ("offered", "201"),
        ("answered", "201"),
        ("ended", "201"),  # AgentComplete (the agent channel's Hangup is skipped)
        ("ended", None),  # Hangup of the caller's channel
    ]
    assert {e.call_id for e in events} == {LINKEDID}
    assert all(e.caller.e164 == ALICE for e in events)
    assert events[1].queue == "sales" and events[0].dialed == "+442079460000"
    assert events[3].attributes[OFFER_WITHDRAWN] is True
    assert events[2].attributes["member_name"] == "Bob"
    assert len({e.event_id for e in events}) == len(events)
    # Deterministic ids: mapping the same block again gives the same id.
    assert map_block(call_blocks()[2])[0].event_id == events[2].event_id


def test_internal_calls_and_transfers() -> None:
    internal = (
        b"Event: Newchannel\r\nChannel: PJSIP/201-00000009\r\nCallerIDNum: 201\r\n"
        b"Uniqueid: 9.1\r\nLinkedid: 9.1\r\n"
    )
    assert map_block(internal) == []
    blind = (
        b"Event: BlindTransfer\r\nResult: Success\r\nTransfererChannel: PJSIP/201-00000003\r\n"
        b"TransfererLinkedid: 1746090000.1\r\nTransfereeChannel: PJSIP/trunk-00000001\r\n"
        b"TransfereeCallerIDNum: 07700900123\r\nTransfereeLinkedid: 1746090000.1\r\n"
        b"IsExternal: No\r\nContext: from-internal\r\nExtension: 202\r\n"
    )
    [event] = map_block(blind)
    assert (event.kind, event.agent, event.attributes[TRANSFER_TO]) == ("transferred", "201", "202")
    assert event.caller.e164 == ALICE and event.call_id == LINKEDID
    attended = (
        b"Event: AttendedTransfer\r\nResult: Success\r\n"
        b"OrigTransfererChannel: PJSIP/201-00000003\r\n"
        b"OrigTransfererLinkedid: 1746090000.1\r\nTransfereeCallerIDNum: 07700900123\r\n"
        b"TransfereeLinkedid: 1746090000.1\r\nTransferTargetChannel: PJSIP/203-00000007\r\n"
        b"DestType: Bridge\r\n"
    )
    [event] = map_block(attended)
    assert (event.agent, event.attributes[TRANSFER_TO]) == ("201", "203")
    failed = blind.replace(b"Result: Success", b"Result: Fail")
    assert map_block(failed) == []
    hold = (
        b"Event: Hold\r\nChannel: PJSIP/201-00000003\r\n"
        b"Uniqueid: 1746090020.3\r\nLinkedid: 1746090000.1\r\n"
    )
    assert [e.kind for e in map_block(hold)] == ["held"]


async def test_connector_survives_a_pbx_restart_mid_call() -> None:
    peer = await AmiPeer().start()
    received: list[CallEvent] = []

    async def on_event(event: CallEvent) -> None:
        received.append(event)

    connector = AmiConnector(
        f"ami://screenpop:{AmiPeer.secret}@127.0.0.1:{peer.port}",
        on_event,
        "GB",
        backoff_initial=0.05,
        backoff_max=0.2,
        ping_interval=0.2,
    )
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: connector.logins == 1)
        blocks = call_blocks()
        for block in blocks[:4]:
            await peer.send(block)
        await eventually(lambda: len(received) == 4)

        await peer.kill()  # Asterisk restarts mid-call
        await asyncio.sleep(0.3)  # connector retries against a closed port meanwhile
        peer2 = await AmiPeer(port=peer.port).start()
        await eventually(lambda: connector.logins == 2)
        for block in blocks[4:]:
            await peer2.send(block)
        await eventually(lambda: len(received) == 8)
        # The ping keeps the session alive across idle periods and is answered.
        await eventually(lambda: any("Action: Ping" in r for r in peer2.received))
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
    assert {e.full_call_id for e in received} == {f"asterisk:{LINKEDID}"}
    assert received[5].agent == "201"
    assert peer2.logins[0]["Username"] == "screenpop"


async def test_connector_retries_refused_login_with_backoff() -> None:
    peer = await AmiPeer().start()
    connector = AmiConnector(
        f"ami://screenpop:wrong@127.0.0.1:{peer.port}",
        lambda event: asyncio.sleep(0),
        "GB",
        backoff_initial=0.02,
        backoff_max=0.05,
    )
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: len(peer.logins) >= 3)
        assert connector.logins == 0
        assert connector.backoff.attempt >= 2  # never reset: no login succeeded
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
        await peer.kill()


async def test_handler_failure_does_not_drop_the_stream() -> None:
    peer = await AmiPeer().start()
    seen: list[str] = []

    async def flaky(event: CallEvent) -> None:
        seen.append(event.kind)
        if len(seen) == 1:
            raise RuntimeError("database hiccup")

    connector = AmiConnector(f"ami://screenpop:{AmiPeer.secret}@127.0.0.1:{peer.port}", flaky, "GB")
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: connector.logins == 1)
        for block in call_blocks()[:3]:
            await peer.send(block)
        await eventually(lambda: len(seen) == 3)
        assert connector.logins == 1  # same session throughout
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
        await peer.kill()


async def test_an_event_that_does_not_fit_is_skipped_not_the_stream() -> None:
    """A Linkedid too long for a call id: that event is logged and dropped, the next arrives."""
    peer = await AmiPeer().start()
    seen: list[str] = []

    async def record(event: CallEvent) -> None:
        seen.append(event.call_id)

    url = f"ami://screenpop:{AmiPeer.secret}@127.0.0.1:{peer.port}"
    connector = AmiConnector(url, record, "GB")
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: connector.logins == 1)
        first, second = call_blocks()[:2]
        await peer.send(first.replace(LINKEDID.encode(), b"9" * 300))
        await peer.send(second)
        await eventually(lambda: seen == [LINKEDID])
        assert connector.logins == 1  # same session throughout
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
        await peer.kill()
