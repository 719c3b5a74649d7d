"""Time `import_orders` of the shared retail file into a fresh PostgreSQL database.

    .venv/bin/python -m bench.import_retail [--file ../shared/data/retail_train.csv.gz]

Prints the seconds for a first import and for a second (idempotent) one, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

from app import migrate
from app.customers.importer import import_orders
from app.db import create_engine
from tests.support.databases import create_pg_database, drop_pg_database

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "retail_train.csv.gz"


async def main(path: Path) -> dict[str, object]:
    url = await create_pg_database()
    try:
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        started = time.perf_counter()
        first = await import_orders(engine, path)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = await import_orders(engine, path)
        second_s = time.perf_counter() - started
        await engine.dispose()
    finally:
        await drop_pg_database(url)
    return {
        "lines": first.lines_read,
        "customers": first.customers_added,
        "first_import_s": round(first_s, 1),
        "lines_per_s": round(first.lines_read / first_s),
        "second_import_s": round(second_s, 1),
        "second_import_lines_added": second.lines_added,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args()
    if not args.file.exists():
        sys.exit(f"{args.file} not found (the shared data set is not on this machine)")
    result = asyncio.run(main(args.file))
    print(f"first import: {result['first_import_s']} s ({result['lines_per_s']} lines/s)")
    added = result["second_import_lines_added"]
    print(f"second import: {result['second_import_s']} s, {added} added")
    print(json.dumps(result))
