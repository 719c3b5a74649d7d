"""Asterisk Manager Interface (AMI) connector.

Why a thin client and not ``panoramisk``: panoramisk speaks AMI well, but its reconnect is a
fixed ``reconnect_timeout`` re-armed from ``connection_lost`` (no backoff, no jitter, and it
keeps re-arming after ``close()``), it is callback-driven with a loop captured at construction,
and it gives no awaitable "session ended" to supervise or test. We need only login, a ping and
an event read loop (about 60 lines), so owning them gives exact reconnect behaviour and typing.

Wire protocol: the server greets with ``Asterisk Call Manager/<version>\\r\\n``; every message is
a block of ``Key: Value\\r\\n`` lines ended by an empty line. We send ``Action: Login`` and wait
for ``Response: Success`` with our ``ActionID``, then read events, pinging every
``ping_interval`` seconds so a silent dead peer is noticed by the idle timeout.

Mapping (call id = ``Linkedid``, shared by every channel of the call):
``Newchannel`` of the call's first channel (``Uniqueid == Linkedid``) with an external-looking
caller (a valid or withheld number; internal extension-to-extension calls are skipped) ->
``queued``; ``QueueCallerJoin`` -> ``queued`` (queue); ``AgentCalled`` -> ``offered`` (agent from
``Interface``: ``PJSIP/201`` -> ``201``; ``MemberName`` kept in attributes); ``AgentConnect`` ->
``answered``; ``AgentRingNoAnswer`` -> ``queued`` with ``offer_withdrawn``;
``QueueCallerAbandon`` -> ``abandoned``; ``AgentComplete`` -> ``ended`` (except
``Reason: transfer``, covered by the transfer event); ``BlindTransfer``/``AttendedTransfer``
(``Result: Success``) -> ``transferred`` with ``transfer_to``; ``Hold``/``Unhold`` ->
``held``/``resumed``; ``Hangup`` of the first channel -> ``ended``. AMI does not replay events
missed while disconnected; the state machine converges on the next event of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from telephony.callerid import extension_of, normalise, normalise_dialed
from telephony.events import (
    OFFER_WITHDRAWN,
    TRANSFER_TO,
    CallEvent,
    EventKind,
    derive_event_id,
    from_unix,
)
from telephony.stream import EventHandler, LoginFailed, ProtocolError, StreamConnector

SOURCE = "asterisk"
_EOM = b"\r\n\r\n"


def parse_ami_message(block: str) -> dict[str, str]:
    """One AMI message (``Key: Value`` lines) as a dict; repeated keys keep the last value."""
    message: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            message[key.strip()] = value.strip()
    return message


def format_ami_action(fields: Mapping[str, str]) -> bytes:
    """An AMI action block, CRLF-terminated."""
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode("utf-8") + b"\r\n"


class _Msg:
    """Case-insensitive read access to an AMI message (casing varies across versions)."""

    def __init__(self, message: Mapping[str, str]) -> None:
        self._lower = {k.lower(): v for k, v in message.items()}

    def get(self, key: str) -> str | None:
        value = self._lower.get(key.lower())
        if value is None or value in ("", "<unknown>"):
            return None
        return value

    def raw_get(self, key: str) -> str | None:
        return self._lower.get(key.lower())


def _occurred_at(msg: _Msg, received_at: datetime) -> datetime:
    ts = msg.get("Timestamp")  # present with 'timestampevents = yes' in manager.conf
    if ts:
        try:
            return from_unix(ts)
        except (ValueError, OverflowError, OSError):
            pass
    return received_at


def _dialed(exten: str | None, region: str) -> str | None:
    # Exten is often a dialplan label ('s', 'queue-sales'); only a real number is a DID.
    if not exten:
        return None
    dialed = normalise_dialed(exten, region)
    return dialed if dialed and dialed.startswith("+") else None


def ami_event_to_call_events(
    message: Mapping[str, str], *, default_region: str, received_at: datetime
) -> list[CallEvent]:
    """Map one AMI event message to ``CallEvent``s ([] for events we do not track)."""
    msg = _Msg(message)
    name = msg.get("Event")
    if name is None:
        return []
    call_id = msg.get("Linkedid") or msg.get("Uniqueid")
    kind: EventKind | None = None
    agent: str | None = None
    queue = msg.get("Queue")
    caller_num = msg.raw_get("CallerIDNum")
    caller_name = msg.get("CallerIDName")
    dialed: str | None = None
    attributes: dict[str, Any] = {"ami_event": name}
    first_channel = msg.get("Uniqueid") is not None and msg.get("Uniqueid") == msg.get("Linkedid")

    if name == "Newchannel":
        if not first_channel:
            return []
        caller = normalise(caller_num, default_region)
        if not (caller.valid or caller.withheld):
            return []
        kind, dialed = "queued", _dialed(msg.get("Exten"), default_region)
    elif name == "QueueCallerJoin":
        kind, dialed = "queued", _dialed(msg.get("Exten"), default_region)
        attributes["position"] = msg.get("Position")
    elif name in ("AgentCalled", "AgentConnect", "AgentRingNoAnswer", "AgentComplete"):
        agent = extension_of(msg.get("Interface")) or msg.get("MemberName")
        if msg.get("MemberName"):
            attributes["member_name"] = msg.get("MemberName")
        if name == "AgentCalled":
            kind = "offered"
        elif name == "AgentConnect":
            kind = "answered"
            attributes["hold_time"] = msg.get("HoldTime")
        elif name == "AgentRingNoAnswer":
            kind = "queued"
            attributes[OFFER_WITHDRAWN] = True
            attributes["ring_time"] = msg.get("RingTime")
        else:
            if (msg.get("Reason") or "").lower() == "transfer":
                return []
            kind = "ended"
            attributes["reason"] = msg.get("Reason")
            attributes["talk_time"] = msg.get("TalkTime")
    elif name == "QueueCallerAbandon":
        kind = "abandoned"
        attributes["hold_time"] = msg.get("HoldTime")
    elif name in ("BlindTransfer", "AttendedTransfer"):
        if (msg.get("Result") or "Success") != "Success":
            return []
        kind = "transferred"
        call_id = (
            msg.get("TransfereeLinkedid")
            or msg.get("TransfererLinkedid")
            or msg.get("OrigTransfererLinkedid")
        )
        caller_num = msg.raw_get("TransfereeCallerIDNum")
        caller_name = msg.get("TransfereeCallerIDName")
        agent = extension_of(msg.get("TransfererChannel") or msg.get("OrigTransfererChannel"))
        if name == "BlindTransfer":
            target = msg.get("Extension")
        else:
            target = extension_of(msg.get("TransferTargetChannel")) or msg.get(
                "SecondTransfererConnectedLineNum"
            )
        attributes[TRANSFER_TO] = target
    elif name in ("Hold", "Unhold"):
        kind = "held" if name == "Hold" else "resumed"
    elif name == "Hangup":
        if not first_channel:
            return []
        kind = "ended"
        attributes["cause"] = msg.get("Cause-txt") or msg.get("Cause")
    if kind is None or not call_id:
        return []
    attributes = {k: v for k, v in attributes.items() if v is not None}
    event_id = derive_event_id(
        SOURCE,
        call_id,
        name,
        agent,
        msg.get("Uniqueid"),
        msg.get("DestUniqueid"),
        msg.get("Timestamp"),
    )
    caller = normalise(caller_num, default_region)
    return [
        CallEvent(
            source=SOURCE,
            event_id=event_id,
            call_id=call_id,
            kind=kind,
            caller=caller,
            caller_name=caller_name,
            dialed=dialed,
            queue=queue,
            agent=agent,
            occurred_at=_occurred_at(msg, received_at),
            attributes=attributes,
            raw=dict(message),
        )
    ]


class AmiConnector(StreamConnector):
    """Connects to ``ami://user:secret@host:5038`` and feeds mapped events to ``on_event``."""

    default_port = 5038
    scheme = "ami"

    def __init__(
        self,
        url: str,
        on_event: EventHandler,
        default_region: str,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        ping_interval: float = 20.0,
    ) -> None:
        super().__init__(
            url,
            on_event,
            default_region,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            idle_timeout=ping_interval * 3,
        )
        self.ping_interval = ping_interval
        self._ids = itertools.count(1)

    async def _read_message(self, reader: asyncio.StreamReader) -> dict[str, str]:
        block = await asyncio.wait_for(reader.readuntil(_EOM), self.idle_timeout)
        return parse_ami_message(block.decode("utf-8", errors="replace"))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        banner = await asyncio.wait_for(reader.readline(), self.idle_timeout)
        if not banner.startswith(b"Asterisk Call Manager/"):
            raise ProtocolError(f"unexpected AMI banner {banner[:60]!r}")
        action_id = f"screenpop-login-{next(self._ids)}"
        writer.write(
            format_ami_action(
                {
                    "Action": "Login",
                    "Username": self.username,
                    "Secret": self.password,
                    "Events": "on",
                    "ActionID": action_id,
                }
            )
        )
        await writer.drain()
        while True:
            message = await self._read_message(reader)
            if message.get("ActionID") == action_id or (
                "Response" in message and "ActionID" not in message
            ):
                break
            await self._handle(message)
        if message.get("Response", "").lower() != "success":
            raise LoginFailed(message.get("Message", "AMI login refused"))
        self._logged_in()
        pinger = asyncio.create_task(self._ping(writer))
        try:
            while True:
                await self._handle(await self._read_message(reader))
        finally:
            pinger.cancel()

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        # A failed write ends only the pinger; the read loop notices the dead socket itself.
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                await asyncio.sleep(self.ping_interval)
                ping = {"Action": "Ping", "ActionID": f"ping-{next(self._ids)}"}
                writer.write(format_ami_action(ping))
                await writer.drain()

    async def _handle(self, message: dict[str, str]) -> None:
        if "Event" not in message:
            return
        events = self._events(
            partial(
                ami_event_to_call_events,
                message,
                default_region=self.default_region,
                received_at=datetime.now(UTC),
            )
        )
        await self._deliver(events)
