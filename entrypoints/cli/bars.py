"""The progress bars of `chute submit`: one per file while it uploads, one for them all.

They are drawn on stderr when it is a terminal; in a pipe or a log, nothing is drawn.
"""

from __future__ import annotations

from collections.abc import Callable

from chute.entrypoints.cli import render
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

KEEP_BARS = 20  # with more files, a file's bar goes when it is done; the total stays


class UploadBars:
    """Bars for uploading files of `sizes` bytes, each known by its place in the list;
    drawn while `progress` is entered (`with bars.progress:`)."""

    def __init__(self, names: list[str], sizes: list[int]) -> None:
        self.names, self.sizes = names, sizes
        self.sent = [0] * len(sizes)
        self.tasks: dict[int, TaskID] = {}
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=render.err,
            disable=not render.err.is_terminal,
        )
        self.total = self.progress.add_task(f"total ({len(sizes)} files)", total=sum(sizes) or 1)

    def start(self, n: int) -> Callable[[int], None]:
        """A bar for the file `n`; the callback to tell it the bytes sent so far."""
        self.tasks[n] = self.progress.add_task(self.names[n], total=self.sizes[n] or 1)
        return lambda count: self._sent(n, count)

    def _sent(self, n: int, count: int) -> None:
        self.progress.update(self.tasks[n], completed=count)
        self.progress.advance(self.total, count - self.sent[n])
        self.sent[n] = count

    def end(self, n: int, *, failed: bool) -> None:
        """The file `n` is done: its bar full, or marked when it `failed`; the total
        counts it as done either way."""
        task = self.tasks[n]
        if failed:
            self.progress.update(task, description=f"{self.names[n]} (failed)")
            self.progress.advance(self.total, self.sizes[n] - self.sent[n])
        else:
            self._sent(n, self.sizes[n])
        if len(self.sizes) > KEEP_BARS and not failed:
            self.progress.remove_task(task)
        del self.tasks[n]
