"""sensitivity: one tensor compressed alone, measured through a session made with that weight substituted."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from auto_models import feeds, make_model, save
from quantzoo.compare import prepare
from quantzoo.quantize import quantize_file
from quantzoo.quantize.recipe import Recipe
from quantzoo.quantize.sensitivity import measure, refine
from quantzoo.quantize.weightsession import WeightSession
from quantzoo.quantize.weights import select

SCHEMES = ("fp16", "linear-4", "kmeans-4", "kmeans-2", "kmeans-2-g8")


def _session(tmp_path, samples=None):
    path = save(tmp_path)
    ev = prepare(path, feeds(), cache=False, batch_size=8)
    proto = make_model()
    chosen, _ = select(proto, min_elements=1024)
    return path, ev, WeightSession(proto, chosen, None, ev, "y", "snr_db", samples)


def _error_energy(path, art, data):
    a, b = ort.InferenceSession(str(path)), ort.InferenceSession(str(art))
    x = np.stack([d["x"] for d in data])
    ya, yb = (s.run(None, {"x": x})[0].astype(np.float64) for s in (a, b))
    return float(np.sum((ya - yb) ** 2))


def test_a_measured_cell_is_the_error_of_the_artifact_with_that_tensor_alone_compressed(tmp_path):
    path, ev, ws = _session(tmp_path)
    table, _ = measure(ws, SCHEMES, probes=None)
    cells = {t.key: t.cells for t in table.tensors}
    assert set(cells) == {"A", "B", "C"} and table.samples == 24
    for key, scheme in (("A", "kmeans-2"), ("B", "linear-4")):
        quantize_file(path, tmp_path / "one.onnx", recipe=Recipe({key: scheme}, min_elements=1024))
        want = _error_energy(path, tmp_path / "one.onnx", feeds())
        assert abs(cells[key][scheme].error_energy - want) <= 1e-3 * want
    # fewer bits, more error; A (the unattenuated path) is ~40 dB more sensitive than B and C
    assert cells["A"]["kmeans-2"].snr_db < cells["A"]["kmeans-4"].snr_db < cells["A"]["fp16"].snr_db
    for s in ("kmeans-4", "linear-4", "kmeans-2"):
        assert 30 < cells["B"][s].snr_db - cells["A"][s].snr_db < 50
    # stored bytes: within the decode overhead of what the engine writes
    assert cells["A"]["kmeans-4"].bytes < cells["A"]["fp16"].bytes < 4 * 3072


def test_predicted_cells_follow_the_weight_error_and_refine_measures_them(tmp_path):
    _, _, ws = _session(tmp_path, samples=8)
    table, decoded = measure(ws, SCHEMES)
    row = next(t for t in table.tensors if t.key == "A")
    assert row.cells["kmeans-4"].measured and not row.cells["kmeans-2"].measured
    predicted = row.cells["kmeans-2"].snr_db
    assert refine(ws, table, "A", "kmeans-2", decoded) and row.cells["kmeans-2"].measured
    assert abs(row.cells["kmeans-2"].snr_db - predicted) < 3  # a linear model: the proxy holds
    assert not refine(ws, table, "A", "kmeans-2", decoded)
    assert table.samples == 8 and ws.calibration_samples == 24


def test_the_table_is_deterministic_and_round_trips(tmp_path):
    _, _, ws1 = _session(tmp_path)
    _, _, ws2 = _session(tmp_path)
    t1, t2 = measure(ws1, SCHEMES)[0], measure(ws2, SCHEMES)[0]
    strip = lambda t: [(r.key, {k: (c.bytes, c.error_energy) for k, c in r.cells.items()}) for r in t.tensors]  # noqa: E731
    assert strip(t1) == strip(t2)
    assert strip(type(t1).from_dict(t1.to_dict())) == strip(t1)
    onnx.checker.check_model(make_model())
