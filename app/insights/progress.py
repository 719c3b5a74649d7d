"""Progress of a ``train`` run: ``report(stage, done, total)``, one bar per stage in the CLI."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

Report = Callable[[str, int, int], None]


def silent(_stage: str, _done: int, _total: int) -> None:
    """A report that shows nothing (library use, tests)."""


class StageBars:
    """A rich progress display with one bar per stage; usable from a worker thread."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, tuple[TaskID, int]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            for other, other_total in self.tasks.values():
                self.progress.update(other, completed=other_total)
        task = self.tasks[stage][0] if stage in self.tasks else self.progress.add_task(stage)
        self.tasks[stage] = (task, total)
        self.progress.update(task, completed=done, total=total)

    def __enter__(self) -> StageBars:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()
