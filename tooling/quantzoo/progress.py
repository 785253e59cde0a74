"""Progress bars on stderr, drawn by rich: one display per process.

`Progress` is a display with counted tasks (the build's "fetch" and "quantize + compare" bars);
`transfer_reporter` is a ``report(done, total)`` callback for one byte transfer. A transfer that
starts while a `Progress` is open joins that display as one more bar (removed when it finishes),
so downloads during a build never fight the build's bars for the terminal; otherwise transfers
share a display of their own that closes when the last one ends. See ARCHITECTURE.md.
"""

from __future__ import annotations

import threading
from typing import Callable

_lock = threading.RLock()
_open: list["Progress"] = []          # displays in use, innermost last (transfers join the last)
_shared: dict = {"display": None, "users": 0}  # the display of transfers outside any Progress


def _columns():
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, ProgressColumn, TextColumn,
                               TimeElapsedColumn)

    class Amount(ProgressColumn):
        """'3/7' for counted tasks, '1.2/3.4 MB' for byte transfers."""

        def __init__(self):
            super().__init__()
            self._count, self._bytes = MofNCompleteColumn(), DownloadColumn()

        def render(self, task):
            return (self._bytes if task.fields.get("bytes") else self._count).render(task)

    return TextColumn("{task.description:<18}"), BarColumn(), Amount(), TimeElapsedColumn()


class Task:
    """One bar of a `Progress`."""

    def __init__(self, display: "Progress", task_id):
        self._display, self._id = display, task_id

    def advance(self, n: int = 1) -> None:
        self._display._bars.advance(self._id, n)

    def update(self, completed: int, total: int | None = None) -> None:
        self._display._bars.update(self._id, completed=completed, total=total)

    def remove(self) -> None:
        self._display._bars.remove_task(self._id)


class Progress:
    """A context manager drawing bars on `console` (default: a rich Console on stderr).

    >>> import io
    >>> from rich.console import Console
    >>> with Progress(Console(file=io.StringIO())) as p:
    ...     t = p.task("quantize", total=2)
    ...     t.advance()
    ...     t.advance()
    ...     p.print("[red]one line[/] above the bars", markup=True)
    """

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import Progress as Bars

        self.console = console or Console(stderr=True, soft_wrap=True)
        self._bars = Bars(*_columns(), console=self.console, transient=False)

    def __enter__(self) -> "Progress":
        self._bars.start()
        with _lock:
            _open.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            if self in _open:
                _open.remove(self)
        self._bars.stop()

    def task(self, label: str, total: int | None, completed: int = 0, *, in_bytes: bool = False) -> Task:
        """A new bar; `in_bytes` shows its amounts as sizes instead of counts."""
        return Task(self, self._bars.add_task(label, total=total, completed=completed, bytes=in_bytes))

    def print(self, text: str, *, markup: bool = False) -> None:
        """A line above the bars (rich markup such as ``[red]…[/]`` only when `markup`)."""
        self.console.print(text, markup=markup, highlight=False)


class _Transfer:
    """``report(done, total)`` for one transfer; `close` ends its bar (also called on failure)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled = label, enabled
        self._task: Task | None = None
        self._joined = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        with _lock:
            if self._task is None:
                self._task = self._start(total)
        self._task.update(done, total)
        if total is not None and done >= total:
            self.close()

    def _start(self, total: int | None) -> Task:
        if _open:
            self._joined = True
            return _open[-1].task(self.label, total, in_bytes=True)
        if _shared["display"] is None:
            _shared["display"] = Progress()
            _shared["display"]._bars.start()  # not in _open: only a Progress opened by a caller is joined
        _shared["users"] += 1
        return _shared["display"].task(self.label, total, in_bytes=True)

    def close(self) -> None:
        with _lock:
            task, self._task = self._task, None
            if task is None:
                return
            if self._joined:
                task.remove()  # the build's display keeps only its own bars
                return
            _shared["users"] -= 1
            if _shared["users"] == 0:
                display, _shared["display"] = _shared["display"], None
                display._bars.stop()


def transfer_reporter(label: str, enabled: bool) -> Callable[[int, int | None], None]:
    """A ``report(done, total)`` callback drawing a byte bar for one transfer (a no-op when not
    `enabled`). The bar ends when `done` reaches `total`; call ``report.close()`` if the transfer
    stops early.

    >>> report = transfer_reporter("model.onnx", enabled=False)
    >>> report(10, 100); report.close()
    """
    return _Transfer(label, enabled)
