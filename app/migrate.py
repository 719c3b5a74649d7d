"""Run Alembic migrations from code (``screenpop migrate``, ``serve``, tests)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def _in_thread(fn_name: str, url: str, revision: str) -> None:
    # Alembic's env.py runs its own event loop, so it must not share the caller's thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(getattr(command, fn_name), alembic_config(url), revision).result()


def upgrade(url: str, revision: str = "head") -> None:
    _in_thread("upgrade", url, revision)


def downgrade(url: str, revision: str = "base") -> None:
    _in_thread("downgrade", url, revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
