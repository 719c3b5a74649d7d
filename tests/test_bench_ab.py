"""``python -m bench --ab REV``: its arguments, run order, verdict arithmetic, the JSON line,
the CPU reading, and the checkout of another revision in a real temporary git repository.
(The measuring itself runs only in the bench: no timings here.)"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ab
from bench.__main__ import parse_args
from bench.ab_tree import (
    RevisionError,
    RevisionTree,
    describe_worktree,
    migration_heads,
    proc_cpu_seconds,
)
from tests.support.server import ROOT


def test_ab_arguments_and_scenarios() -> None:
    args = parse_args(["--ab", "HEAD~1"])
    assert (args.ab, args.rounds, args.quick, args.threshold) == ("HEAD~1", 3, False, 0.10)
    assert ab.scenario(args) == ab.Scenario(1_000_000, 10_000_000, 2000, 200, 30)
    quick = parse_args(["--ab", "61b8467", "--quick", "--rounds", "4", "--agents", "50"])
    assert quick.rounds == 4
    assert ab.scenario(quick) == ab.Scenario(10_000, 100_000, 50, 200, 15)


def test_plain_bench_keeps_its_defaults() -> None:
    args = parse_args([])
    assert (args.ab, args.customers, args.lines, args.agents, args.rate, args.duration) == (
        None, 1_000_000, 10_000_000, 2000, 200, 30,
    )  # fmt: skip
    assert parse_args(["--customers-from-shared"]).agents == 200
    assert parse_args(["--rate", "500"]).rate == 500


def test_fewer_than_three_rounds_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--ab", "HEAD~1", "--rounds", "2"])
    assert "at least 3" in capsys.readouterr().err


def test_runs_alternate_old_then_new_in_each_round() -> None:
    assert ab.run_order(3) == [
        (1, "old"), (1, "new"), (2, "old"), (2, "new"), (3, "old"), (3, "new"),
    ]  # fmt: skip


def run(side: str, p50: float, p99: float, cpu: float, errors: int = 0, round_: int = 1) -> ab.Run:
    return ab.Run(round_, side, p50, p99, cpu, pops=100, events=400, errors=errors, lost=0,
                  load_1min=1.0)  # fmt: skip


def test_verdict_compares_medians_against_the_threshold() -> None:
    runs = [
        run("old", 2.0, 10.0, 1.0, round_=1), run("new", 2.2, 11.0, 1.2, round_=1),
        run("old", 2.0, 30.0, 1.0, round_=2), run("new", 2.2, 10.5, 1.1, round_=2),
        run("old", 4.0, 9.0, 1.0, round_=3), run("new", 9.0, 12.0, 1.0, round_=3),
    ]  # fmt: skip
    by_metric = {c.metric: c for c in ab.compare(runs, threshold=0.10)}
    p50, p99, cpu = by_metric["p50_ms"], by_metric["p99_ms"], by_metric["cpu_ms_per_event"]
    assert (p50.old, p50.new) == (2.0, 2.2)
    assert p50.ratio == pytest.approx(1.1) and p50.verdict == "ok"  # exactly 10 %: no worse
    assert (p99.old, p99.new, p99.ratio, p99.verdict) == (10.0, 11.0, 1.1, "ok")
    assert p99.old_spread == pytest.approx(30 / 9)
    assert p99.round_ratios == pytest.approx((1.1, 10.5 / 30, 12 / 9))
    assert cpu.ratio == pytest.approx(1.1) and cpu.verdict == "ok"
    assert ab.overall(list(by_metric.values()), runs) == "pass"
    assert ab.verdict(1.1001, 0.10) == "worse"
    assert ab.verdict(0.5, 0.10) == "ok"
    assert ab.verdict(math.nan, 0.10) == "no data"


def test_errors_or_a_slower_figure_fail_the_comparison() -> None:
    slower = [run("old", 2.0, 10.0, 1.0), run("new", 2.0, 11.5, 1.0)]
    comparisons = ab.compare(slower, threshold=0.10)
    assert [c.verdict for c in comparisons] == ["ok", "worse", "ok"]
    assert ab.overall(comparisons, slower) == "fail"
    errors = [run("old", 2.0, 10.0, 1.0), run("new", 2.0, 10.0, 1.0, errors=1)]
    assert ab.overall(ab.compare(errors, threshold=0.10), errors) == "fail"


def test_a_run_without_pops_gives_no_data_and_valid_json() -> None:
    runs = [run("old", 2.0, 10.0, 1.0), run("new", math.nan, math.nan, 1.0)]
    comparisons = ab.compare(runs, threshold=0.10)
    assert [c.verdict for c in comparisons] == ["no data", "no data", "ok"]
    sc = ab.Scenario(10_000, 100_000, 200, 200, 15)
    line = json.dumps(ab.result_json("abc", "def", sc, runs, comparisons), allow_nan=False)
    parsed = json.loads(line)
    assert parsed["verdict"] == "fail"
    assert parsed["comparison"]["p99_ms"]["new"] is None
    assert parsed["runs"][1]["p50_ms"] is None
    assert any("ratio" in ln and "verdict" in ln for ln in ab.report(runs, comparisons, 0.10))


def test_cpu_time_is_read_from_proc() -> None:
    before = sum(os.times()[:2])
    sum(i * i for i in range(200_000))
    measured = proc_cpu_seconds(os.getpid())
    after = sum(os.times()[:2])
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert before - tick <= measured <= after + tick


# --- the other revision's checkout ---------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two commits of a tiny ``app`` package."""
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    for version in ("old", "new"):
        (repo / "app" / "__init__.py").write_text(f"VERSION = {version!r}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", version)
    return repo


class FakeInstall:
    """Stands in for ``pip install -e`` (slow, and the network's): a venv whose python is
    this interpreter, which imports ``app`` from the working directory like the real one."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, tree: Path, venv: Path) -> None:
        self.calls.append(tree)
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(sys.executable)


def worktrees(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


def test_checkout_of_a_revision_is_made_and_removed(repo: Path, tmp_path: Path) -> None:
    install = FakeInstall()
    cache = tmp_path / "cache"
    with RevisionTree(repo, "HEAD~1", cache=cache, install=install) as old:
        assert old.sha == git(repo, "rev-parse", "HEAD~1")
        assert (old.path / "app" / "__init__.py").read_text() == "VERSION = 'old'\n"
        assert str(old.path) in worktrees(repo)
        assert git(old.path, "rev-parse", "HEAD") == old.sha
    assert not old.path.exists()
    assert str(old.path) not in worktrees(repo)
    assert (repo / "app" / "__init__.py").read_text() == "VERSION = 'new'\n"
    assert describe_worktree(repo) == git(repo, "rev-parse", "HEAD")
    # The virtualenv is kept: the next A/B of the same commit does not install again.
    with RevisionTree(repo, "HEAD~1", cache=cache, install=install) as again:
        assert again.path == old.path and again.path.exists()
    assert install.calls == [old.path]
    (repo / "app" / "__init__.py").write_text("VERSION = 'changed'\n")
    assert describe_worktree(repo) == git(repo, "rev-parse", "HEAD") + "+changes"


def test_checkout_is_removed_when_the_run_fails(repo: Path, tmp_path: Path) -> None:
    tree = RevisionTree(repo, "HEAD~1", cache=tmp_path / "cache", install=FakeInstall())
    with pytest.raises(KeyboardInterrupt), tree:
        raise KeyboardInterrupt
    assert not tree.path.exists()
    assert str(tree.path) not in worktrees(repo)


def test_a_checkout_left_by_a_killed_run_is_replaced(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sha = git(repo, "rev-parse", "HEAD~1")
    git(repo, "worktree", "add", "--detach", str(cache / sha / "tree"), "HEAD")
    with RevisionTree(repo, "HEAD~1", cache=cache, install=FakeInstall()) as old:
        assert git(old.path, "rev-parse", "HEAD") == sha
    assert str(old.path) not in worktrees(repo)


def test_unknown_revision_and_foreign_imports_are_refused(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="rev-parse"):
        RevisionTree(repo, "no-such-rev", cache=tmp_path / "cache")

    def no_app(tree: Path, venv: Path) -> None:
        FakeInstall()(tree, venv)
        (tree / "app" / "__init__.py").unlink()  # the interpreter cannot import the tree's app

    tree = RevisionTree(repo, "HEAD~1", cache=tmp_path / "cache", install=no_app)
    with pytest.raises(RevisionError, match="imports app from"):
        tree.__enter__()
    assert not tree.path.exists()
    assert str(tree.path) not in worktrees(repo)


def test_migration_heads_are_read_by_the_trees_interpreter() -> None:
    heads = migration_heads(Path(sys.executable), ROOT)
    revisions = {p.name.split("_")[3] for p in (ROOT / "migrations" / "versions").glob("2*.py")}
    assert heads and set(heads.split()) <= revisions
