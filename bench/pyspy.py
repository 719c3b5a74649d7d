"""Summarise py-spy's raw (collapsed stack) output: where the server's time goes."""

from __future__ import annotations

from collections import Counter

OURS = ("app/", "telephony/")


def summarise_raw(text: str, top: int = 15) -> list[str]:
    """Lines naming the functions with the most samples on-CPU (self) and overall (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_short(frames[-1])] += n
        for frame in set(frames):
            inclusive[_short(frame)] += n
    if not total:
        return ["no samples"]
    out = [f"{total} samples; most self time:"]
    out += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("most inclusive time in our code (app/, telephony/):")
    shown = 0
    for name, n in inclusive.most_common():
        if not any(f"({root}" in name for root in OURS):
            continue
        if "cli.py" in name:
            continue
        out.append(f"{100 * n / total:5.1f}%  {name}")
        shown += 1
        if shown >= top:
            break
    return out


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for root in ("/app/", "/telephony/", "/bench/"):
        if path.startswith(root[1:]):
            short = path
            break
        if root in path and "site-packages" not in path:
            short = path[path.rindex(root) + 1 :]
            break
    else:
        parts = path.split("/")
        short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})" if where else name
