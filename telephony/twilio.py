"""Twilio Programmable Voice and TaskRouter webhooks.

Routes (``request.path`` ends with the last segment):

* ``…/voice`` - the incoming-call webhook -> ``queued``; answer it with ``twiml_enqueue``.
* ``…/status`` - status callbacks. On the caller's leg: ``queued``/``initiated``/``ringing`` ->
  ``queued``, ``completed`` -> ``ended``, ``busy``/``no-answer``/``canceled``/``failed`` ->
  ``abandoned``; ``in-progress`` is ignored (Twilio answering the call to run TwiML is not an
  agent answering). On a child leg (``ParentCallSid`` set, e.g. ``<Dial>`` to an agent) the call
  id is the parent's and the leg is an offer: ``ringing`` -> ``offered``, ``in-progress`` ->
  ``answered``, ``completed`` -> ``ended``, anything else -> offer withdrawn.
* ``…/taskrouter`` - TaskRouter events: ``task.created`` -> ``queued``, ``reservation.created``
  -> ``offered``, ``reservation.accepted`` -> ``answered``, ``reservation.rejected/timeout/
  canceled/rescinded`` -> offer withdrawn, ``task.canceled`` -> ``abandoned``,
  ``task.wrapup``/``task.completed`` -> ``ended``; others ignored. The task's attributes JSON
  must hold ``call_sid`` (Twilio's ``<Enqueue>`` puts ``call_sid``, ``from``, ``to`` there).

Signature: ``X-Twilio-Signature`` = base64 HMAC-SHA1(auth token, URL + sorted key/values) for
forms; for JSON bodies the URL carries ``bodySHA256`` (hex SHA-256 of the body) and only the URL
is signed. As in Twilio's own library the URL is tried with and without the default port, and
``X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256`` selects HMAC-SHA256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

from telephony.base import (
    WebhookRequest,
    form_pairs,
    optional_str,
    require_media_type,
    required_str,
    should_verify,
)
from telephony.callerid import extension_of, normalise, normalise_dialed
from telephony.errors import BadSignature, MalformedEvent
from telephony.events import OFFER_WITHDRAWN, CallEvent, EventKind, derive_event_id, from_unix

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

_PARENT_STATUS: dict[str, EventKind] = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "queued",
    "completed": "ended",
    "busy": "abandoned",
    "no-answer": "abandoned",
    "canceled": "abandoned",
    "failed": "abandoned",
}
_CHILD_STATUS: dict[str, EventKind] = {
    "ringing": "offered",
    "in-progress": "answered",
    "completed": "ended",
}
_CHILD_WITHDRAWN = frozenset({"busy", "no-answer", "canceled", "failed"})

_TASKROUTER: dict[str, EventKind] = {
    "task.created": "queued",
    "reservation.created": "offered",
    "reservation.accepted": "answered",
    "task.canceled": "abandoned",
    "task.wrapup": "ended",
    "task.completed": "ended",
}
_TASKROUTER_WITHDRAWN = frozenset(
    {"reservation.rejected", "reservation.timeout", "reservation.canceled", "reservation.rescinded"}
)


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if not parts.port:
        return url
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=host))


def compute_signature(
    token: str, url: str, params: Sequence[tuple[str, str]], algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's signature of ``url`` + params (each name once, sorted; its values sorted)."""
    grouped: dict[str, set[str]] = {}
    for key, value in params:
        grouped.setdefault(key, set()).add(value)
    payload = url + "".join(k + v for k in sorted(grouped) for v in sorted(grouped[k]))
    digest = hmac.new(token.encode("utf-8"), payload.encode("utf-8"), _HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode("ascii")


def _algorithm(settings: str | None) -> str:
    for part in (settings or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
            if algorithm not in _HASHES:
                raise BadSignature(f"unsupported Twilio signature algorithm {algorithm!r}")
            return algorithm
    return "HMAC_SHA1"


def twiml_enqueue(
    queue_name: str,
    *,
    workflow_sid: str | None = None,
    task: tuple[int, Mapping[str, Any]] | None = None,
) -> str:
    """TwiML that puts the caller in ``queue_name``, or into a TaskRouter workflow; with a
    workflow, ``task`` (``(priority, attributes)``, see ``telephony.routing.twilio_task``)
    becomes the ``<Task priority=…>{attributes JSON}</Task>`` TaskRouter creates the task
    with. A named queue has no priority in Twilio: there ``task`` is left out. XML-escaped."""
    attrs = f" workflowSid={quoteattr(workflow_sid)}" if workflow_sid else ""
    body = escape(queue_name)
    if workflow_sid and task is not None:
        # The workflow picks the TaskQueue; the name would only be stray text beside <Task>.
        priority, attributes = task
        body = (
            f"<Task priority={quoteattr(str(priority))}>"
            f"{escape(json.dumps(attributes, separators=(',', ':')))}</Task>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Enqueue{attrs}>{body}</Enqueue></Response>"
    )


def _agent_of(to: str | None) -> str | None:
    # <Dial><Client>alice</Client> legs are addressed 'client:alice'; SIP legs 'sip:201@pbx'.
    if to and to.startswith("client:"):
        return to.removeprefix("client:") or None
    return extension_of(to)


def _route(request: WebhookRequest, fields: Mapping[str, str]) -> str:
    last = request.path.rstrip("/").rsplit("/", 1)[-1]
    if last in ("voice", "status", "taskrouter"):
        return last
    # An unknown path still gets a sensible reading from the fields Twilio sent.
    if "EventType" in fields:
        return "taskrouter"
    return "status"


def _fields(request: WebhookRequest) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Form fields (query merged under body for GET webhooks) and the JSON body if any."""
    media = (
        require_media_type(request, "application/x-www-form-urlencoded", "application/json")
        if request.body
        else ""
    )
    fields: dict[str, str] = {k: v for k, v in request.query.items() if k != "bodySHA256"}
    if media == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            raise MalformedEvent("body", f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise MalformedEvent("body", "expected a JSON object")
        fields.update({k: str(v) for k, v in data.items() if isinstance(v, str | int | float)})
        return fields, data
    fields.update(form_pairs(request.body))
    return fields, None


class TwilioAdapter:
    """Adapter for ``/telephony/twilio/{voice,status,taskrouter}``."""

    source = "twilio"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Check ``X-Twilio-Signature`` exactly as Twilio's ``RequestValidator`` does."""
        if not should_verify(self.source, secret, dev=dev):
            return
        assert secret is not None
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise BadSignature("missing X-Twilio-Signature header")
        algorithm = _algorithm(request.header(SETTINGS_HEADER))
        query = parse_qs(urlsplit(request.url).query)
        params: Sequence[tuple[str, str]]
        if "bodySHA256" in query:
            expected_hash = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(expected_hash, query["bodySHA256"][0]):
                raise BadSignature("bodySHA256 does not match the body")
            params = []
        elif request.method.upper() == "POST":
            params = form_pairs(request.body)
        else:
            params = []
        for url in (_without_port(request.url), _with_port(request.url)):
            if hmac.compare_digest(compute_signature(secret, url, params, algorithm), signature):
                return
        raise BadSignature("X-Twilio-Signature does not match the URL and parameters")

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """Events from a voice, status-callback or TaskRouter webhook."""
        fields, data = _fields(request)
        raw: dict[str, Any] = data if data is not None else dict(fields)
        route = _route(request, fields)
        if route == "taskrouter":
            return self._taskrouter(fields, raw, request, default_region)
        return self._call(route, fields, raw, request, default_region)

    def _call(
        self,
        route: str,
        fields: Mapping[str, str],
        raw: dict[str, Any],
        request: WebhookRequest,
        default_region: str,
    ) -> list[CallEvent]:
        call_sid = required_str(fields, "CallSid")
        status = (fields.get("CallStatus") or "").strip().lower()
        parent = optional_str(fields, "ParentCallSid")
        attributes: dict[str, Any] = {"call_status": status} if status else {}
        agent: str | None = None
        kind: EventKind | None
        if route == "voice":
            kind = "queued"
            event_id = derive_event_id(self.source, call_sid, "voice")
        else:
            if not status:
                raise MalformedEvent("CallStatus", "is required")
            if parent:
                kind = _CHILD_STATUS.get(status)
                agent = _agent_of(fields.get("To") or fields.get("Called"))
                attributes["leg_sid"] = call_sid
                if status in _CHILD_WITHDRAWN:
                    kind = "queued"
                    attributes[OFFER_WITHDRAWN] = True
            else:
                kind = _PARENT_STATUS.get(status)
            event_id = derive_event_id(
                self.source, call_sid, "status", status, fields.get("SequenceNumber")
            )
        if kind is None:
            return []
        caller_raw = fields.get("From") or fields.get("Caller")
        dialed_raw = fields.get("To") or fields.get("Called")
        if parent:
            # A child leg runs from our number to the agent; the caller is on the parent leg.
            caller_raw, dialed_raw = None, None
        return [
            CallEvent(
                source=self.source,
                event_id=event_id,
                call_id=parent or call_sid,
                kind=kind,
                caller=normalise(caller_raw, default_region),
                caller_name=optional_str(fields, "CallerName"),
                dialed=normalise_dialed(dialed_raw, default_region),
                agent=agent,
                occurred_at=request.received_at,
                attributes=attributes,
                raw=raw,
            )
        ]

    def _taskrouter(
        self,
        fields: Mapping[str, str],
        raw: dict[str, Any],
        request: WebhookRequest,
        default_region: str,
    ) -> list[CallEvent]:
        event_type = required_str(fields, "EventType")
        withdrawn = event_type in _TASKROUTER_WITHDRAWN
        kind: EventKind | None = "queued" if withdrawn else _TASKROUTER.get(event_type)
        if kind is None:
            return []
        try:
            task = json.loads(fields.get("TaskAttributes") or "{}")
        except ValueError as exc:
            raise MalformedEvent("TaskAttributes", f"not valid JSON ({exc})") from exc
        if not isinstance(task, dict):
            raise MalformedEvent("TaskAttributes", "expected a JSON object")
        task = cast(dict[str, Any], task)
        call_sid = required_str(task, "call_sid", label="TaskAttributes.call_sid")
        attributes: dict[str, Any] = {"event_type": event_type}
        for key in ("TaskSid", "ReservationSid", "WorkerSid", "TaskCanceledReason"):
            if fields.get(key):
                attributes[key] = fields[key]
        if task.get("account_ref") is not None:
            attributes["account_ref"] = str(task["account_ref"])
        if withdrawn:
            attributes[OFFER_WITHDRAWN] = True
        agent = None
        if event_type.startswith("reservation."):
            agent = optional_str(fields, "WorkerName") or optional_str(fields, "WorkerSid")
        occurred_at = request.received_at
        if fields.get("Timestamp"):
            try:
                occurred_at = from_unix(fields["Timestamp"])
            except (ValueError, OverflowError, OSError) as exc:
                raise MalformedEvent("Timestamp", "expected unix seconds") from exc
        event_id = optional_str(fields, "EventSid") or derive_event_id(
            self.source, call_sid, event_type, agent, fields.get("Timestamp")
        )
        caller_raw = task.get("from") or task.get("caller")
        dialed_raw = task.get("to") or task.get("called")
        return [
            CallEvent(
                source=self.source,
                event_id=event_id,
                call_id=call_sid,
                kind=kind,
                caller=normalise(
                    caller_raw if isinstance(caller_raw, str) else None, default_region
                ),
                caller_name=optional_str(task, "caller_name"),
                dialed=normalise_dialed(
                    dialed_raw if isinstance(dialed_raw, str) else None, default_region
                ),
                queue=optional_str(fields, "TaskQueueName"),
                agent=agent,
                occurred_at=occurred_at,
                attributes=attributes,
                raw=raw,
            )
        ]
