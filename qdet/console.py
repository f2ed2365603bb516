"""What the CLI prints, and how: plain text (user text is never read as markup), tables that fit, progress.

- Every message goes through :func:`say` / :func:`error`: file names with square brackets print as they are.
- Tables fold long cells onto a second line instead of cutting them (``pynq-z1`` never becomes ``pynq-…``), and
  off a terminal (a log file, a pipe) they print at their natural width rather than at 80 columns.
- :func:`progress` is a spinner on a terminal and one plain line per update otherwise, so ``make demo > log``
  gets readable lines, not megabytes of carriage returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

# sys.stdout / sys.stderr are looked up at each print (rich does when no file is given), so output captured by
# tests and redirections lands where they expect.
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def say(text: str, style: str | None = None) -> None:
    """Print one plain line (no markup), optionally styled as a whole."""
    console.print(Text(text, style=style or ""), soft_wrap=True)


def done(label: str, rest: str) -> None:
    """A result line: a green label, then plain text."""
    console.print(Text.assemble((label, "green"), " ", rest), soft_wrap=True)


def note(text: str) -> None:
    """A yellow ``note:`` line."""
    console.print(Text.assemble(("note:", "yellow"), " ", text), soft_wrap=True)


def warn(text: str) -> None:
    """A yellow ``warning:`` line on stderr."""
    err.print(Text.assemble(("warning:", "yellow"), " ", text), soft_wrap=True)


def error(text: str) -> None:
    """The one way an error is printed: ``error: <text>`` on stderr, plain."""
    err.print(Text.assemble(("error:", "bold red"), " ", text), soft_wrap=True)


def table(title: str, columns: list[str], left: int = 1) -> Table:
    """A table whose first ``left`` columns are left-aligned, the rest right-aligned. On a terminal too narrow for
    it, cells fold onto further lines (``pynq-`` / ``z1``), never cut to an ellipsis that could name two boards."""
    t = Table(title=Text(title))
    for i, column in enumerate(columns):
        t.add_column(Text(column), justify="left" if i < left else "right", overflow="fold")
    return t


def row(t: Table, *cells: str) -> None:
    """Add a row of plain (non-markup) cells."""
    t.add_row(*(Text(str(c)) for c in cells))


def show(t: Table) -> None:
    """Print a table: fitted to the terminal, or at its natural width when output is not a terminal."""
    if console.is_terminal:
        console.print(t)
    else:
        # rich caps a print's width at the console's (80 off a terminal): print through a console that wide.
        natural = console.measure(t, options=console.options.update(max_width=1000)).maximum
        Console(file=console.file, width=max(80, natural), highlight=False, color_system=None).print(t)


@contextlib.contextmanager
def progress(first: str) -> Iterator[Callable[[str], None]]:
    """Yield ``update(text)``: a spinner line on a terminal, one printed line per update otherwise."""
    if console.is_terminal:
        with console.status(Text(first)) as status:
            yield lambda text: status.update(Text(text))
    else:
        say(first)
        yield say


def log_pointer(log: Path, what: str = "third-party messages") -> None:
    """One line saying where the chatter went (only when something was written)."""
    if log.is_file() and log.stat().st_size:
        say(f"{what}: {log}", style="dim")
