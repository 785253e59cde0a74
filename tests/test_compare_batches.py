"""Batches and the cached float outputs: stacking, shape checks, and the .npz round trip."""

from __future__ import annotations

import numpy as np

from quantzoo.compare.batches import Prepared, load_prepared, save_prepared, stack


def test_batches_break_where_the_shape_changes_and_at_the_batch_size():
    feeds = [{"x": np.zeros((2, 2))}] * 5 + [{"x": np.zeros((3, 2))}]
    assert [b["x"].shape for b in stack(feeds, 2)] == [(2, 2, 2), (2, 2, 2), (1, 2, 2), (1, 3, 2)]


def test_the_prepared_state_reads_back_as_saved_and_another_layout_is_a_miss(tmp_path):
    p = Prepared(batches=[{"x": np.arange(4.0).reshape(2, 2)}], keys=["a", "b"], labels=["cat", None],
                 skipped=[("c.txt", "not an image")], reference=[[np.array([[1.0], [2.0]])]])
    path = tmp_path / "state.npz"
    save_prepared(path, p, ["x"])
    back = load_prepared(path, ["x"], 1)
    assert back.keys == p.keys and back.labels == p.labels and back.skipped == p.skipped
    assert np.array_equal(back.batches[0]["x"], p.batches[0]["x"])
    assert np.array_equal(back.reference[0][0], p.reference[0][0])
    assert load_prepared(path, ["y"], 1) is None and load_prepared(path, ["x"], 2) is None
    assert load_prepared(tmp_path / "missing.npz", ["x"], 1) is None
