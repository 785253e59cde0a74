"""weightsession: the model run with any substitution of weights, against its float weights."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from auto_models import feeds, make_model, save
from quantzoo.compare import prepare
from quantzoo.quantize.weights import select
from quantzoo.quantize.weightsession import WeightSession


def test_weights_in_constant_nodes_and_if_branches_are_substituted_too(tmp_path):
    import quantize_models as qm

    model = qm.make_model()
    onnx.save(model, tmp_path / "m.onnx")
    from types import SimpleNamespace

    # a scalar input (the If's flag) is beyond compare's preprocessing: the evaluation's batches
    # and float outputs are made here, as `compare.prepare` would hold them
    batches = [{"x": qm.X, "flag": np.array(flag)} for flag in (True, False)]
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    names = [o.name for o in sess.get_outputs()]
    reference = [[sess.run(None, b)[j] for b in batches] for j in range(len(names))]
    ev = SimpleNamespace(custom_ops=None, output_names=names, kinds=["dense"] * len(names),
                         contexts=[{}] * len(names), batches=batches, reference=reference)
    proto = qm.make_model()
    chosen, _ = select(proto)
    ws = WeightSession(proto, chosen, None, ev, "y", "snr_db")
    assert len(ws.floats) == 5 and {"conv.w", "gemm.w", "matmul.w"} < set(ws.floats)
    # no substitution gives the original model's outputs
    error, _ = ws.run({})
    assert error <= 1e-8 * ws.signal
    # a branch weight changes only the samples that take that branch
    key = next(k for k in ws.floats if k.endswith("then.w"))
    error, _ = ws.run({key: ws.floats[key] * 0})
    assert error > 0
    # and the float weights are back afterwards: a session made anew gives the float outputs
    assert ws.run({"conv.w": ws.floats["conv.w"]})[0] <= 1e-8 * ws.signal


def test_a_check_stops_once_it_cannot_pass_and_decides_as_the_whole_split(tmp_path):
    from quantzoo.quantize.requirement import give_up

    ev = prepare(save(tmp_path), feeds(), cache=False, batch_size=8)
    proto = make_model()
    chosen, _ = select(proto, min_elements=1024)
    ws = WeightSession(proto, chosen, None, ev, "y", "top1_agreement")
    assert ws.counts == [8, 8, 8]
    ruin = {"A": ws.floats["A"] * 0}  # y = 0.01 (xB + xC): the top-1 class moves on most samples
    snr, values = ws.check(ruin)
    assert len(values) == 24 and np.mean(values) < 0.5 and snr < 10
    # 0.95 of 24 values allows one miss: the first batch already has more, so the check stops there
    _, part = ws.check(ruin, give_up({"calibration_mean_at_least": 0.95}))
    assert part == values[:8]
    # the float weights agree everywhere: a check that can pass runs every batch
    snr, values = ws.check({}, give_up({"calibration_mean_at_least": 0.95}))
    assert values == [1.0] * 24 and snr == 200.0


def test_small_weights_share_one_session_fed_them_as_inputs_and_measure_the_same(tmp_path, monkeypatch):
    from quantzoo.quantize import weightsession

    ev = prepare(save(tmp_path), feeds(), cache=False, batch_size=8)

    def session(samples):
        proto = make_model()
        return WeightSession(proto, select(proto, min_elements=1024)[0], None, ev, "y", "snr_db", samples)

    fed = session(16)
    assert fed.groups == {"A": 0, "B": 0, "C": 0}  # 3 × 3072 values: one group
    monkeypatch.setattr(weightsession, "FED_ELEMENTS", 0)
    const = session(16)
    assert const.groups == {}
    rng = np.random.default_rng(0)
    for key in ("A", "B", "C"):
        w = fed.floats[key] + rng.standard_normal(fed.floats[key].shape).astype(np.float32) * 0.01
        (e_fed, v_fed), (e_const, v_const) = fed.run({key: w}), const.run({key: w})
        assert e_fed > 0 and abs(e_fed - e_const) <= 1e-4 * e_const
        assert np.allclose(v_fed, v_const, atol=1e-3) and len(v_fed) == 16
    assert len(fed._fed) == 1 and fed.runs == const.runs + 1  # one session made, one float pass through it
    # the shared session's weights are inputs: the model it was made from still holds the float ones
    assert fed.run({"A": fed.floats["A"]})[0] == 0.0
