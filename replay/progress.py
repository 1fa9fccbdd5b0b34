"""A rich progress bar for long record/check runs; silent when asked or when stderr is not a TTY."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress(total: int, what: str, *, quiet: bool) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(name)``; draws a bar on stderr for more than one item on a terminal."""
    if quiet or total < 2 or not sys.stderr.isatty():
        yield lambda _name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total, current="")

        def advance(name: str) -> None:
            bar.update(task, advance=1, current=name)

        yield advance
