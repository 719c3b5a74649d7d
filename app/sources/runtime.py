"""The systems of record inside the service: built at start from ``SCREENPOP_SOURCES_FILE``.

Without the setting nothing starts and ``get(state)`` is None. With it: the file is validated
(an invalid file stops the start with a message naming the source and key), the live sources
are built, the outbox deliverer runs every second, and each sql source with a
``sync.schedule_s`` is synced on that interval. Run scheduled syncs on ONE instance (or from
cron with ``screenpop sync``): instances do not coordinate them; the deliverer is safe on
every instance (each message is claimed before it is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.sources.config import SourcesConfig, load_config
from app.state import State

if TYPE_CHECKING:  # imported by start(): HTTP and database clients only when configured
    from app.sources.deliver import Deliverer
    from app.sources.live import LiveSources

log = logging.getLogger(__name__)


@dataclass
class SourcesRuntime:
    config: SourcesConfig
    live: LiveSources
    deliverer: Deliverer
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def get(state: State) -> SourcesRuntime | None:
    """The running systems of record, or None when none are configured."""
    return state["services"].get("sources")


async def start(state: State) -> None:
    settings = state["settings"]
    if settings.sources_file is None:
        return
    from app.sources.deliver import Deliverer
    from app.sources.live import LiveSources

    config = load_config(settings.sources_file)
    runtime = SourcesRuntime(config, LiveSources(config), Deliverer(state["engine"], config))
    runtime.tasks.append(asyncio.create_task(runtime.deliverer.run(), name="outbox-deliverer"))
    for name, source in config.sources.items():
        if source.sync is not None and source.sync.schedule_s > 0:
            task = asyncio.create_task(_sync_loop(state, name, config), name=f"sync-{name}")
            runtime.tasks.append(task)
    state["services"]["sources"] = runtime


async def _sync_loop(state: State, name: str, config: SourcesConfig) -> None:
    from app.sources.sync import sync_source

    source = config.sources[name]
    assert source.sync is not None
    while True:
        try:
            reports = await sync_source(
                state["engine"], name, source, region=state["settings"].default_region
            )
            summary = {entity: r.as_dict() for entity, r in reports.items()}
            log.info("sync %s", name, extra={"sync": summary})
        except Exception:  # a failed run must not stop the next one
            log.exception("sync %s failed", name)
        await asyncio.sleep(source.sync.schedule_s)


async def stop(state: State) -> None:
    runtime = state["services"].pop("sources", None)
    if runtime is None:
        return
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await runtime.live.close()
    await runtime.deliverer.close()
