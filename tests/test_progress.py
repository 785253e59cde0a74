"""Progress bars: counted tasks, byte transfers, and transfers joining an open display."""

from __future__ import annotations

import io

from rich.console import Console

from quantzoo import progress
from quantzoo.progress import Progress, transfer_reporter


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=False), out


def test_tasks_count_up_and_printed_lines_appear_above_the_bars():
    console, out = _console()
    with Progress(console) as p:
        t = p.task("quantize + compare", total=3, completed=1)
        t.advance()
        t.advance()
        p.print("  tiny fp16: quantized")
        p.print("[red]FAILED[/] tiny kmeans-4", markup=True)
    text = out.getvalue()
    assert "  tiny fp16: quantized" in text and "FAILED tiny kmeans-4" in text and "[red]" not in text
    assert "3/3" in text


def test_markup_is_printed_literally_unless_asked_for():
    console, out = _console()
    with Progress(console) as p:
        p.print("a [b] c")
    assert "a [b] c" in out.getvalue()


def test_a_transfer_inside_a_progress_joins_it_and_leaves_when_done():
    console, _ = _console()
    with Progress(console) as p:
        p.task("fetch", total=1)
        report = transfer_reporter("model.onnx", enabled=True)
        report(10, 100)
        assert [t.description for t in p._bars.tasks] == ["fetch", "model.onnx"]
        report(100, 100)
        assert [t.description for t in p._bars.tasks] == ["fetch"]
    assert progress._shared["display"] is None


def test_transfers_outside_a_progress_share_one_display_that_closes_with_the_last(monkeypatch):
    console, _ = _console()
    monkeypatch.setattr(progress, "Progress", lambda: Progress(console))
    a, b = transfer_reporter("a", True), transfer_reporter("b", True)
    a(1, 10)
    b(1, None)
    shared = progress._shared["display"]
    assert shared is not None and progress._shared["users"] == 2
    a(10, 10)
    assert progress._shared["display"] is shared
    b.close()  # a transfer that stopped early
    assert progress._shared["display"] is None and progress._shared["users"] == 0


def test_a_disabled_reporter_draws_nothing():
    report = transfer_reporter("x", enabled=False)
    report(5, 10)
    report.close()
    assert progress._shared["display"] is None
