"""modes: each `Mode` record's encode function, its numpy decode, and a new mode added as one record."""

from __future__ import annotations

import numpy as np
import pytest
from quantize_models import CONV_W, GEMM_W, decoded, decoded_in_onnxruntime, expected, make_model, matmul_model

from quantzoo.quantize import MODES, Encoded, Layout, Mode, decode, quantize_weights
from quantzoo.quantize.kmeans import assign
from quantzoo.quantize.modes import all_granularities


def test_per_block_uses_one_scale_per_channel_and_block():
    enc = MODES["linear"].encode(CONV_W, 4, Layout("per_block", 0, 1, 4))
    assert enc.kind == "affine" and enc.scale.shape == (32, 2, 1, 1, 1)
    err_block = np.linalg.norm(decode(enc) - CONV_W)
    err_channel = np.linalg.norm(decode(MODES["linear"].encode(CONV_W, 4, Layout("per_channel", 0))) - CONV_W)
    assert err_block < err_channel


def test_per_block_that_does_not_divide_the_input_axis_falls_back_to_per_channel_and_says_so():
    enc = MODES["linear"].encode(CONV_W, 4, Layout("per_block", 0, 1, 3))
    assert enc.granularity == "per_channel" and "not a multiple of block_size 3" in enc.note


def test_one_bit_linear_is_sign_times_scale_not_min_max():
    for mode in ("linear", "linear_symmetric"):
        enc = MODES[mode].encode(GEMM_W, 1, Layout("per_channel", 0))
        approx = decode(enc)
        assert np.array_equal(np.sign(approx), np.where(GEMM_W >= 0, 1, -1))
        np.testing.assert_allclose(np.abs(approx).max(axis=1), np.abs(GEMM_W).mean(axis=1), rtol=1e-5)
        assert np.linalg.norm(approx - GEMM_W) / np.linalg.norm(GEMM_W) < 0.8


def test_linear_keeps_zero_exact():
    w = CONV_W.copy()
    w[0, 0, 0, :] = 0.0
    for nbits in range(2, 9):
        assert np.all(decode(MODES["linear"].encode(w, nbits, Layout("per_channel", 0)))[0, 0, 0] == 0.0)


def test_error_shrinks_as_bits_grow_for_every_mode():
    for mode in ("linear", "linear_symmetric", "linear_lut", "kmeans_lut"):
        errs = [np.linalg.norm(decode(MODES[mode].encode(GEMM_W, n, Layout("per_tensor"))) - GEMM_W)
                for n in range(2, 9)]
        assert all(a > b for a, b in zip(errs, errs[1:])), (mode, errs)


def test_kmeans_beats_linear_table_at_the_same_bits():
    for n in (2, 3, 4):
        km = np.linalg.norm(decode(MODES["kmeans_lut"].encode(GEMM_W, n, Layout())) - GEMM_W)
        lin = np.linalg.norm(decode(MODES["linear_lut"].encode(GEMM_W, n, Layout())) - GEMM_W)
        assert km < lin


# --- the records ------------------------------------------------------------------------------

def test_every_record_is_consistent():
    prefixes = [m.prefix for m in MODES.values() if m.prefix is not None]
    assert len(prefixes) == len(set(prefixes))
    for name, m in MODES.items():
        assert m.name == name and m.default_granularity in m.granularities
        assert m.nbits is None or 1 <= m.nbits[0] <= m.nbits[1] <= 8
        assert m.marker in ("circle", "square", "triangle", "diamond") and m.colour.startswith("#")


def test_the_records_keep_the_modes_their_defaults_and_the_chart_styles():
    got = {n: (m.prefix, m.default_granularity, m.nbits, m.heavy, m.colour, m.marker) for n, m in MODES.items()}
    assert got == {
        "linear": ("linear", "per_channel", (1, 8), False, "#2563eb", "circle"),
        "linear_symmetric": ("linear-sym", "per_channel", (1, 8), False, "#0891b2", "circle"),
        "linear_lut": ("lut", "per_tensor", (1, 8), False, "#7c3aed", "triangle"),
        "kmeans_lut": ("kmeans", "per_tensor", (1, 8), True, "#ea580c", "square"),
        "unique_lut": ("unique", "per_tensor", (1, 8), False, "#16a34a", "triangle"),
        "custom_lut": ("custom", "per_tensor", (1, 8), True, "#db2777", "triangle"),
        "fp16": (None, "per_tensor", None, False, "#6b7280", "diamond"),
    }
    assert [m.name for m in MODES.values() if m.takes_lut_function] == ["custom_lut"]
    assert all_granularities() == ("per_tensor", "per_channel", "per_block", "per_grouped_channel")


# --- adding a mode is one record ----------------------------------------------------------------

def symmetric_table(w: np.ndarray, nbits: int, layout: Layout) -> Encoded:
    """A toy table mode: 2^n levels evenly spaced over [-max|w|, max|w|], one table per tensor."""
    top = float(np.abs(w).max())
    lut = np.linspace(-top, top, 1 << nbits, dtype=np.float32)
    codes = assign(w.ravel(), lut).reshape(w.shape)
    return Encoded("table", w.shape, nbits, "per_tensor", codes=codes, tables=lut[None])


TOY = Mode("symmetric_lut", "sym", "symmetric table", symmetric_table, ("per_tensor",), "per_tensor", (1, 8),
           colour="#111111", marker="square")


@pytest.fixture
def toy_mode(monkeypatch):
    monkeypatch.setitem(MODES, TOY.name, TOY)
    return TOY


def test_a_new_mode_is_unknown_until_its_record_is_added():
    from quantzoo.errors import UsageError
    from quantzoo.quantize.variants import parse_variant

    with pytest.raises(ValueError, match="unknown variant id 'sym-4'"):
        parse_variant("sym-4")
    with pytest.raises(UsageError, match="unknown mode 'symmetric_lut'"):
        quantize_weights(make_model(), 4, "symmetric_lut")


def test_a_new_mode_record_gives_its_variant_ids(toy_mode):
    from quantzoo.quantize.variants import MODE_DEFAULT_GRANULARITY, Variant, parse_variant

    assert parse_variant("sym-4") == Variant("sym-4", "symmetric_lut", 4, "per_tensor")
    assert MODE_DEFAULT_GRANULARITY["symmetric_lut"] == "per_tensor"
    with pytest.raises(ValueError, match=r"with mode one of linear, linear-sym, lut, kmeans, unique, custom, sym \(a table"):
        parse_variant("sym-9")


def test_a_new_mode_record_quantizes_a_model_that_runs_in_onnxruntime(toy_mode):
    q = quantize_weights(make_model(), 4, "symmetric_lut")
    got = decoded_in_onnxruntime(q)
    want = expected("symmetric_lut", 4, "per_tensor")
    for name in want:
        assert np.array_equal(got[name], want[name]), name
        assert len(np.unique(got[name])) <= 16
    meta = {p.key: p.value for p in q.metadata_props}
    assert meta["quantzoo.mode"] == "symmetric_lut" and meta["quantzoo.nbits"] == "4"
    small = quantize_weights(matmul_model(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64)), 2,
                             "symmetric_lut")
    assert decoded(small.graph) == ["W"] and small.graph.node[-1].op_type == "MatMul"


def test_a_new_mode_record_is_drawn_in_its_own_colour_and_marker(toy_mode):
    from quantzoo.publish.charts import Point, size_agreement_svg

    svg = size_agreement_svg([Point("sym-4", 300, 0.97, "symmetric_lut"), Point("kmeans-4", 310, 0.98, "kmeans_lut")],
                             float_size=1000, metric="top1_agreement", metric_label="top-1 agreement")
    assert '<g class="qz-point" data-variant="sym-4">' in svg
    assert '<rect x="' in svg and 'fill="#111111" stroke="#fff"' in svg  # a square marker
    assert ">symmetric lut</text>" in svg
    assert 'fill="#ea580c"' in svg  # the other modes keep theirs
