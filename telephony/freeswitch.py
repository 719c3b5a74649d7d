"""FreeSWITCH event socket (ESL, inbound mode) connector.

Why a thin client and not ``genesis``: genesis is a capable asyncio ESL library, but we use
five lines of the protocol (``auth``, ``event plain …``, and reading ``Content-Length``-framed
``text/event-plain`` messages). Owning them keeps the dependency list short, gives us the same
supervised reconnect loop (backoff, jitter, idle timeout) as the AMI connector, and keeps the
parse step a pure, unit-testable function. genesis's own reconnect/session model would have to
be wrapped to get that behaviour anyway.

Wire protocol: on connect the server sends ``Content-Type: auth/request``; we answer
``auth <password>`` and expect ``command/reply`` with ``Reply-Text: +OK accepted``; then
``event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE HEARTBEAT CUSTOM
callcenter::info`` (HEARTBEAT lets the idle timeout detect a silent dead peer). Each message is
LF-terminated ``Key: Value`` headers and a blank line, followed by ``Content-Length`` bytes of
body; an event body is itself headers with URL-encoded values.

Mapping. ``mod_callcenter`` (``CC-Action``; call id = ``CC-Member-Session-UUID``, the caller's
channel): ``member-queue-start`` -> ``queued``; ``agent-offering`` -> ``offered`` (agent
``CC-Agent`` without ``@domain``); ``bridge-agent-start`` -> ``answered``; ``bridge-agent-end``
-> ``ended``; ``bridge-agent-fail`` -> ``queued`` with ``offer_withdrawn``; ``member-queue-end``
with ``CC-Cause: Cancel`` -> ``abandoned``, with ``Terminated`` -> ``ended``. Channel events
(call id = ``Unique-ID``): ``CHANNEL_CREATE`` of an inbound channel with an external-looking
caller -> ``queued``; ``CHANNEL_HANGUP_COMPLETE`` of such a channel -> ``ended``;
``CHANNEL_ANSWER`` of an outbound leg bridged from a caller (``Other-Leg-Unique-ID``) outside
mod_callcenter -> ``answered`` by the callee. Events are not replayed after a reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from telephony.callerid import extension_of, normalise, normalise_dialed
from telephony.events import OFFER_WITHDRAWN, CallEvent, EventKind, derive_event_id
from telephony.stream import EventHandler, LoginFailed, ProtocolError, StreamConnector

SOURCE = "freeswitch"
SUBSCRIPTION = (
    "event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE HEARTBEAT"
    " CUSTOM callcenter::info"
)

_CC_KINDS: dict[str, EventKind] = {
    "member-queue-start": "queued",
    "agent-offering": "offered",
    "bridge-agent-start": "answered",
    "bridge-agent-end": "ended",
    "bridge-agent-fail": "queued",
}


def parse_headers(block: str, *, decode: bool) -> dict[str, str]:
    """``Key: Value`` lines to a dict; ``decode`` URL-decodes values (event bodies)."""
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        key, sep, value = line.partition(": ")
        if sep:
            headers[key.strip()] = unquote(value.strip()) if decode else value.strip()
    return headers


def parse_plain_event(body: str) -> dict[str, str]:
    """A ``text/event-plain`` body to its (decoded) headers; an inner body is kept as ``_body``."""
    head, _, rest = body.partition("\n\n")
    event = parse_headers(head, decode=True)
    if rest.strip():
        event["_body"] = rest
    return event


def _occurred_at(event: Mapping[str, str], received_at: datetime) -> datetime:
    micros = event.get("Event-Date-Timestamp")
    if micros and micros.isdigit():
        try:
            return datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return received_at


def _short(name: str | None) -> str | None:
    # mod_callcenter names agents and queues 'name@domain'.
    return name.split("@", 1)[0] if name else None


def esl_event_to_call_events(
    event: Mapping[str, str], *, default_region: str, received_at: datetime
) -> list[CallEvent]:
    """Map one decoded FreeSWITCH event to ``CallEvent``s ([] for events we do not track)."""
    name = event.get("Event-Name")
    kind: EventKind | None = None
    call_id: str | None = None
    agent = queue = dialed = None
    attributes: dict[str, Any] = {"fs_event": name}
    caller_num = event.get("Caller-Caller-ID-Number")
    caller_name = event.get("Caller-Caller-ID-Name")
    inbound = event.get("Call-Direction") == "inbound"

    if name == "CUSTOM" and event.get("Event-Subclass") == "callcenter::info":
        action = event.get("CC-Action", "")
        attributes["cc_action"] = action
        call_id = event.get("CC-Member-Session-UUID") or event.get("Unique-ID")
        queue = _short(event.get("CC-Queue"))
        agent = _short(event.get("CC-Agent"))
        caller_num = event.get("CC-Member-CID-Number") or caller_num
        caller_name = event.get("CC-Member-CID-Name") or caller_name
        if action == "member-queue-end":
            cause = event.get("CC-Cause", "")
            attributes["cause"] = cause
            if event.get("CC-Cancel-Reason"):
                attributes["cancel_reason"] = event["CC-Cancel-Reason"]
            kind = "abandoned" if cause == "Cancel" else "ended"
        else:
            kind = _CC_KINDS.get(action)
            if action == "bridge-agent-fail":
                attributes[OFFER_WITHDRAWN] = True
                attributes["hangup_cause"] = event.get("CC-Hangup-Cause")
    elif name in ("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"):
        caller = normalise(caller_num, default_region)
        if not inbound or not (caller.valid or caller.withheld):
            return []
        call_id = event.get("Unique-ID")
        kind = "queued" if name == "CHANNEL_CREATE" else "ended"
        dialed = normalise_dialed(event.get("Caller-Destination-Number"), default_region)
        if name == "CHANNEL_HANGUP_COMPLETE":
            attributes["hangup_cause"] = event.get("Hangup-Cause")
    elif name == "CHANNEL_ANSWER":
        other = event.get("Other-Leg-Unique-ID")
        if inbound or not other or event.get("variable_cc_queue"):
            return []
        call_id, kind = other, "answered"
        agent = extension_of(
            event.get("Caller-Callee-ID-Number") or event.get("Caller-Destination-Number")
        )
        # On the agent leg the 'caller' fields describe the original caller via the bridge.
        caller_num = event.get("Other-Leg-Caller-ID-Number") or caller_num
    if kind is None or not call_id:
        return []
    attributes = {k: v for k, v in attributes.items() if v is not None}
    event_id = event.get("Event-UUID") or derive_event_id(
        SOURCE, event.get("Core-UUID"), event.get("Event-Sequence"), call_id, name
    )
    return [
        CallEvent(
            source=SOURCE,
            event_id=event_id,
            call_id=call_id,
            kind=kind,
            caller=normalise(caller_num, default_region),
            caller_name=caller_name or None,
            dialed=dialed,
            queue=queue,
            agent=agent,
            occurred_at=_occurred_at(event, received_at),
            attributes=attributes,
            raw=dict(event),
        )
    ]


class EslConnector(StreamConnector):
    """Connects to ``esl://:password@host:8021`` and feeds mapped events to ``on_event``."""

    default_port = 8021
    scheme = "esl"

    def __init__(
        self,
        url: str,
        on_event: EventHandler,
        default_region: str,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        idle_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            url,
            on_event,
            default_region,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            idle_timeout=idle_timeout,
        )
        if not self.password:
            self.password = "ClueCon"  # FreeSWITCH's shipped default

    async def _read_frame(self, reader: asyncio.StreamReader) -> tuple[dict[str, str], str]:
        head = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.idle_timeout)
        headers = parse_headers(head.decode("utf-8", errors="replace"), decode=False)
        length = headers.get("Content-Length")
        body = ""
        if length:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            raw = await asyncio.wait_for(reader.readexactly(int(length)), self.idle_timeout)
            body = raw.decode("utf-8", errors="replace")
        return headers, body

    async def _command(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str
    ) -> str:
        writer.write(command.encode("utf-8") + b"\n\n")
        await writer.drain()
        headers, _ = await self._read_frame(reader)
        if headers.get("Content-Type") != "command/reply":
            raise ProtocolError(f"expected command/reply, got {headers.get('Content-Type')!r}")
        return headers.get("Reply-Text", "")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers, _ = await self._read_frame(reader)
        if headers.get("Content-Type") != "auth/request":
            raise ProtocolError(f"expected auth/request, got {headers.get('Content-Type')!r}")
        reply = await self._command(reader, writer, f"auth {self.password}")
        if not reply.startswith("+OK"):
            raise LoginFailed(reply or "ESL auth refused")
        reply = await self._command(reader, writer, SUBSCRIPTION)
        if not reply.startswith("+OK"):
            raise ProtocolError(f"event subscription refused: {reply}")
        self._logged_in()
        while True:
            headers, body = await self._read_frame(reader)
            content_type = headers.get("Content-Type")
            if content_type == "text/disconnect-notice":
                raise EOFError("FreeSWITCH sent a disconnect notice")
            if content_type != "text/event-plain":
                continue
            events = self._events(
                partial(
                    esl_event_to_call_events,
                    parse_plain_event(body),
                    default_region=self.default_region,
                    received_at=datetime.now(UTC),
                )
            )
            await self._deliver(events)
