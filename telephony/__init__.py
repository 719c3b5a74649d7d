"""Telephony in: provider payloads and PBX streams -> ``CallEvent``s.

Pure: imports nothing from ``app`` and knows no database. Webhook adapters live in
``telephony.registry.ADAPTERS``; the Asterisk and FreeSWITCH connectors are
``telephony.asterisk.AmiConnector`` and ``telephony.freeswitch.EslConnector``.
"""

from telephony.events import CallerId, CallEvent, EventKind

__all__ = ["CallEvent", "CallerId", "EventKind"]
