"""Dependency bounds, the lowest-bounds constraints and the image's lock agree with pyproject."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
DEV = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]


def pins(path: Path) -> dict[str, Version]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", path.read_text(), re.MULTILINE)
    return {canonicalize_name(name): Version(v) for name, v in found}


def lower_bound(req: Requirement) -> Version:
    bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{req} needs exactly one lower bound (>=)"
    return bounds[0]


@pytest.mark.parametrize("req", RUNTIME + DEV, ids=str)
def test_lowest_constraints_pin_every_dependency_at_its_lower_bound(req: Requirement) -> None:
    """``make test-lowest`` installs exactly the lower bounds (``make constraints`` rewrites)."""
    pinned = pins(ROOT / "constraints" / "lowest.txt")
    assert pinned.get(canonicalize_name(req.name)) == lower_bound(req), (
        f"constraints/lowest.txt is stale for {req}: run `make constraints`"
    )


@pytest.mark.parametrize("req", RUNTIME, ids=str)
def test_the_image_lock_satisfies_every_runtime_dependency(req: Requirement) -> None:
    pinned = pins(ROOT / "constraints" / "locked.txt")
    version = pinned.get(canonicalize_name(req.name))
    assert version is not None and req.specifier.contains(version), (
        f"constraints/locked.txt does not satisfy {req}: run `make lock`"
    )


def test_the_lock_is_hashed_and_has_no_dev_tools() -> None:
    text = (ROOT / "constraints" / "locked.txt").read_text()
    entries = re.findall(
        r"^[A-Za-z0-9_.\-]+==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M
    )
    assert len(entries) == len(pins(ROOT / "constraints" / "locked.txt"))
    assert not {"pytest", "mypy", "playwright"} & set(pins(ROOT / "constraints" / "locked.txt"))
