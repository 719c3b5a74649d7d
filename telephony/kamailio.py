"""Kamailio ``http_client`` form posts (see ``telephony/kamailio/`` for the route).

Form fields ``call_id, from_user, from_name, to_user, ruri_user, pai, event, ts``:
``event`` is ``offered`` (ringing extension ``ruri_user``), ``answered``, ``unanswered`` (the
offer to ``ruri_user`` was withdrawn: a ``queued`` event with ``offer_withdrawn``, never an
abandon), ``abandoned`` or ``ended``. ``pai`` (a P-Asserted-Identity URI) is preferred over
``from_user`` for the caller; ``to_user`` is the dialed number; ``ts`` unix seconds, possibly
fractional. Kamailio retransmits identical posts on timeout, so the event id is derived from
(call_id, event, ruri_user, ts). Authentication: ``X-Screenpop-Token`` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telephony.base import (
    WebhookRequest,
    check_shared_secret,
    load_form,
    optional_str,
    require_media_type,
    required_str,
)
from telephony.callerid import normalise, normalise_dialed
from telephony.errors import MalformedEvent
from telephony.events import OFFER_WITHDRAWN, CallEvent, EventKind, derive_event_id, from_unix

TOKEN_HEADER = "x-screenpop-token"
_KINDS: dict[str, EventKind] = {
    "offered": "offered",
    "answered": "answered",
    "unanswered": "queued",
    "abandoned": "abandoned",
    "ended": "ended",
}


class KamailioAdapter:
    """Adapter for ``POST /telephony/kamailio/events``."""

    source = "kamailio"

    def verify(
        self, request: WebhookRequest, secret: str | None, *, dev: bool, now: datetime
    ) -> None:
        """Compare ``X-Screenpop-Token`` with the configured token in constant time."""
        presented = request.header(TOKEN_HEADER)
        check_shared_secret(self.source, secret, presented, dev=dev, where=f"{TOKEN_HEADER} header")

    def parse(self, request: WebhookRequest, *, default_region: str) -> list[CallEvent]:
        """One ``CallEvent`` from the form post."""
        require_media_type(request, "application/x-www-form-urlencoded")
        form = load_form(request.body)
        event = required_str(form, "event").lower()
        kind = _KINDS.get(event)
        if kind is None:
            raise MalformedEvent("event", f"{event!r} is not one of {sorted(_KINDS)}")
        call_id = required_str(form, "call_id")
        ts = optional_str(form, "ts")
        occurred_at = request.received_at
        if ts:
            try:
                occurred_at = from_unix(ts)
            except (ValueError, OverflowError, OSError) as exc:
                raise MalformedEvent("ts", "expected unix seconds") from exc
        agent = optional_str(form, "ruri_user")
        attributes: dict[str, Any] = {}
        if event == "unanswered":
            if not agent:
                raise MalformedEvent("ruri_user", "is required for 'unanswered'")
            attributes[OFFER_WITHDRAWN] = True
        caller_name = (form.get("from_name") or "").strip().strip('"').strip() or None
        return [
            CallEvent(
                source=self.source,
                event_id=derive_event_id(self.source, call_id, event, agent, ts),
                call_id=call_id,
                kind=kind,
                caller=normalise(
                    optional_str(form, "pai") or form.get("from_user"), default_region
                ),
                caller_name=caller_name,
                dialed=normalise_dialed(optional_str(form, "to_user"), default_region),
                agent=agent,
                occurred_at=occurred_at,
                attributes=attributes,
                raw=dict(form),
            )
        ]
