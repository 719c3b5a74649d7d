"""Webhook adapters by route name: ``/telephony/{name}/…`` -> ``ADAPTERS[name]``.

Adding a vendor: write its module, add one line here.
"""

from __future__ import annotations

from telephony.amazon_connect import AmazonConnectAdapter
from telephony.base import WebhookAdapter
from telephony.chatwoot import ChatwootAdapter
from telephony.contacts import ContactAdapter
from telephony.events import CONTACT_CHANNELS
from telephony.generic import GenericAdapter
from telephony.kamailio import KamailioAdapter
from telephony.telnyx import TelnyxAdapter
from telephony.twilio import TwilioAdapter
from telephony.vonage import VonageAdapter

# Adapters are stateless, so one shared instance each is safe.
ADAPTERS: dict[str, WebhookAdapter] = {
    "generic": GenericAdapter(),
    "twilio": TwilioAdapter(),
    "telnyx": TelnyxAdapter(),
    "vonage": VonageAdapter(),
    "amazon-connect": AmazonConnectAdapter(),
    "kamailio": KamailioAdapter(),
}

# Contacts that are not calls, by route name: ``/contacts/{name}/events``. A channel's name
# is its events' source, so no contact id can equal a call id (``test_registry`` checks).
CONTACT_ADAPTERS: dict[str, WebhookAdapter] = {
    **{channel: ContactAdapter(channel) for channel in CONTACT_CHANNELS},
    "chatwoot": ChatwootAdapter(),
}

# The setting (without the SCREENPOP_ prefix) that holds each adapter's secret.
SECRET_SETTINGS: dict[str, str] = {
    "generic": "WEBHOOK_SECRET",
    "twilio": "TWILIO_AUTH_TOKEN",
    "telnyx": "TELNYX_PUBLIC_KEY",
    "vonage": "VONAGE_SIGNATURE_SECRET",
    "amazon-connect": "AMAZON_CONNECT_API_KEY",
    "kamailio": "KAMAILIO_TOKEN",
    # The generic contact webhook is signed as the generic call webhook.
    **{channel: "WEBHOOK_SECRET" for channel in CONTACT_CHANNELS},
    "chatwoot": "CHATWOOT_TOKEN",
}


class UnknownProvider(LookupError):
    """No adapter is registered under that route name (the app answers 404)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.detail = f"unknown telephony provider {name!r}; known: {', '.join(sorted(ADAPTERS))}"


def get_adapter(name: str) -> WebhookAdapter:
    """The adapter for route ``name``; raises ``UnknownProvider``."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UnknownProvider(name) from None


class UnknownChannel(UnknownProvider):
    """No contact adapter under that route name (the app answers 404)."""

    def __init__(self, name: str) -> None:
        LookupError.__init__(self, name)
        known = ", ".join(sorted(CONTACT_ADAPTERS))
        self.detail = f"unknown contact channel {name!r}; known: {known}"


def get_contact_adapter(name: str) -> WebhookAdapter:
    """The adapter for ``/contacts/{name}/events``; raises ``UnknownChannel``."""
    try:
        return CONTACT_ADAPTERS[name]
    except KeyError:
        raise UnknownChannel(name) from None
