"""Several screenpop instances on one Asterisk AMI: each gets every event, with the same ids.

The journal keeps one row per (source, event id), so the copies are answered as duplicates
and each event is applied once, whichever instance's copy lands first.
"""

from __future__ import annotations

import asyncio

from telephony_helpers import eventually
from test_ami_connector import AmiPeer, call_blocks

from telephony.asterisk import AmiConnector
from telephony.events import CallEvent


async def test_two_instances_on_one_ami_derive_the_same_event_ids() -> None:
    peer = await AmiPeer().start()
    received: list[list[CallEvent]] = [[], []]
    connectors = []
    for inbox in received:

        async def on_event(event: CallEvent, inbox: list[CallEvent] = inbox) -> None:
            inbox.append(event)

        connectors.append(
            AmiConnector(f"ami://screenpop:{AmiPeer.secret}@127.0.0.1:{peer.port}", on_event, "GB")
        )
    tasks = [asyncio.create_task(c.run()) for c in connectors]
    try:
        await eventually(lambda: all(c.logins == 1 for c in connectors))
        for block in call_blocks():
            for writer in peer.writers:  # Asterisk sends every event to every AMI session
                writer.write(block)
                await writer.drain()
        await eventually(lambda: all(len(r) == 8 for r in received))
        await peer.kill()
    finally:
        for connector in connectors:
            await connector.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    first, second = ([e.event_id for e in r] for r in received)
    assert first == second
    assert len(set(first)) == 8, "distinct events keep distinct ids"
