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


def test_an_unbatched_input_keeps_its_shape_in_checks_and_loses_the_sample_axis_when_fed():
    import pytest

    from quantzoo.compare.batches import check_feed, model_feed, unbatched_inputs
    from quantzoo.compare.inputs import InputSpec
    from quantzoo.errors import QuantzooError

    specs = [InputSpec("image", "tensor(float)", (1, 3, None, None)), InputSpec("w", "tensor(float)", (26,))]
    feed = {"image": np.zeros((3, 4, 4), np.float32), "w": np.zeros(26, np.float32)}
    check_feed(feed, specs, "s", "m.onnx", unbatched=("w",))
    with pytest.raises(QuantzooError, match="takes shape"):
        check_feed(feed, specs, "s", "m.onnx")
    batch = stack([feed], 1)[0]
    assert {k: v.shape for k, v in model_feed(batch, ("w",)).items()} == {"image": (1, 3, 4, 4), "w": (26,)}
    assert model_feed(batch) is batch
    assert unbatched_inputs({"unbatched": ["w"]}, specs, "m.onnx") == ("w",) and unbatched_inputs({}, specs, "m") == ()
    with pytest.raises(QuantzooError, match="not an input"):
        unbatched_inputs({"unbatched": ["style"]}, specs, "m.onnx")
