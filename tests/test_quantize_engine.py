"""engine: every mode × nbits on the test model, decoded by real onnxruntime; config errors; the CLI.

The test model (quantize_models.py) exposes every weight through an Identity output, so the
decoded values onnxruntime computes are compared bit for bit with the engine's numpy decode.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from quantize_models import WEIGHTS, decoded_in_onnxruntime, expected, make_model

from quantzoo.cli import main
from quantzoo.errors import QuantzooError, UsageError
from quantzoo.quantize import MODES, quantize_file, quantize_weights


def snap(w, levels):
    """w with every value replaced by its nearest of `levels` (for unique_lut)."""
    levels = np.sort(np.asarray(levels, np.float32))
    return levels[np.abs(w[..., None] - levels).argmin(-1)].astype(np.float32)


def sign_table(weights, nbits):
    """A custom table: the mean of the negative and of the non-negative weights."""
    neg, pos = weights[weights < 0], weights[weights >= 0]
    lut = np.array([neg.mean() if neg.size else 0.0, pos.mean() if pos.size else 0.0], np.float32)
    return lut, (weights >= 0).astype(np.int64).ravel()


GRID = [(mode, nbits) for mode in ("linear", "linear_symmetric", "linear_lut", "kmeans_lut") for nbits in range(1, 9)]


@pytest.mark.parametrize("mode,nbits", GRID)
def test_weights_in_initializers_constants_and_if_branches_decode_exactly_in_onnxruntime(mode, nbits):
    q = quantize_weights(make_model(), nbits, mode)
    got = decoded_in_onnxruntime(q)
    want = expected(mode, nbits, MODES[mode].default_granularity)
    for name in WEIGHTS:
        assert got[name].dtype == np.float32 and got[name].shape == WEIGHTS[name][0].shape
        assert np.array_equal(got[name], want[name]), f"{name} decoded differently in onnxruntime"


@pytest.mark.parametrize("nbits", range(1, 9))
def test_unique_lut_is_lossless_when_a_tensor_has_at_most_2_pow_n_values(nbits):
    levels = np.linspace(-0.5, 0.5, 1 << nbits).astype(np.float32)
    weights = {name: snap(w, levels) for name, (w, _, _) in WEIGHTS.items()}
    q = quantize_weights(make_model(weights), nbits, "unique_lut")
    got = decoded_in_onnxruntime(q)
    for name in WEIGHTS:
        assert np.array_equal(got[name], weights[name])


@pytest.mark.parametrize("nbits", range(1, 9))
def test_custom_lut_function_decodes_to_its_own_table(nbits):
    q = quantize_weights(make_model(), nbits, "custom_lut", lut_function=sign_table)
    got = decoded_in_onnxruntime(q)
    want = expected("custom_lut", nbits, "per_tensor", lut_function=sign_table)
    for name in WEIGHTS:
        assert np.array_equal(got[name], want[name])
        assert len(np.unique(got[name])) <= 2


def test_fp16_decodes_to_the_float16_rounding_of_every_weight():
    got = decoded_in_onnxruntime(quantize_weights(make_model(), mode="fp16"))
    for name, (w, _, _) in WEIGHTS.items():
        assert np.array_equal(got[name], w.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("mode,nbits,granularity,extra", [
    ("linear", 4, "per_tensor", {}),
    ("linear", 3, "per_block", {"block_size": 8}),
    ("linear_symmetric", 5, "per_block", {"block_size": 16}),
    ("linear", 8, "per_block", {"block_size": 32}),
    ("kmeans_lut", 3, "per_grouped_channel", {"group_size": 16}),
    ("linear_lut", 4, "per_grouped_channel", {"group_size": 5}),
    ("kmeans_lut", 8, "per_grouped_channel", {}),
])
def test_every_granularity_decodes_exactly(mode, nbits, granularity, extra):
    q = quantize_weights(make_model(), nbits, mode, granularity=granularity, **extra)
    got = decoded_in_onnxruntime(q)
    want = expected(mode, nbits, granularity, **extra)
    for name in WEIGHTS:
        assert np.array_equal(got[name], want[name]), name


def test_same_input_and_config_give_byte_identical_files(tmp_path):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)
    for mode, nbits in (("kmeans_lut", 3), ("linear", 6), ("fp16", None)):
        a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
        ra = quantize_file(src, a, mode=mode, nbits=nbits)
        rb = quantize_file(src, b, mode=mode, nbits=nbits, jobs=1)
        assert a.read_bytes() == b.read_bytes()
        assert ra.to_dict() == rb.to_dict()


def test_spreading_tensors_over_processes_changes_no_byte(tmp_path):
    src, a, b = tmp_path / "f.onnx", tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx.save(make_model(), src)
    quantize_file(src, a, mode="kmeans_lut", nbits=5, jobs=1)
    quantize_file(src, b, mode="kmeans_lut", nbits=5, jobs=2)
    assert a.read_bytes() == b.read_bytes()


# --- bad input --------------------------------------------------------------------------------

def test_a_file_that_is_not_onnx_is_a_clear_error_and_writes_nothing(tmp_path):
    src, dst = tmp_path / "notes.onnx", tmp_path / "out.onnx"
    src.write_text("this is not a model\n" * 10)
    with pytest.raises(QuantzooError, match=r"notes\.onnx is not an ONNX model") as e:
        quantize_file(src, dst, mode="linear", nbits=8)
    assert "expected a .onnx file" in str(e.value)
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(QuantzooError, match=r"missing\.onnx: no such file"):
        quantize_file(tmp_path / "missing.onnx", tmp_path / "o.onnx", mode="linear", nbits=8)


@pytest.mark.parametrize("nbits", [0, 9, -1, 2.5, None])
def test_nbits_outside_1_to_8_is_a_usage_error(tmp_path, nbits):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    with pytest.raises(UsageError, match=f"nbits must be an integer from 1 to 8 for mode linear, found {nbits}"):
        quantize_file(src, dst, mode="linear", nbits=nbits)
    assert not dst.exists()


def test_unknown_mode_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown mode 'palettize'; expected one of linear, linear_symmetric, "
                                         "linear_lut, kmeans_lut, unique_lut, custom_lut, fp16"):
        quantize_weights(make_model(), 4, "palettize")


def test_fp16_with_nbits_is_a_usage_error():
    with pytest.raises(UsageError, match=r"mode fp16 takes no nbits \(it stores 16-bit floats\), found nbits=8"):
        quantize_weights(make_model(), 8, "fp16")


def test_wrong_granularity_and_missing_block_size_are_usage_errors():
    with pytest.raises(UsageError, match="granularity 'per_block' does not apply to mode kmeans_lut"):
        quantize_weights(make_model(), 4, "kmeans_lut", granularity="per_block")
    with pytest.raises(UsageError, match="per_block needs a positive integer block_size"):
        quantize_weights(make_model(), 4, "linear", granularity="per_block")


def test_a_lut_function_goes_with_custom_lut_only():
    with pytest.raises(UsageError, match=r"^mode custom_lut needs a lut_function: a callable"):
        quantize_weights(make_model(), 4, "custom_lut")
    with pytest.raises(UsageError, match=r"^lut_function applies only to mode custom_lut, not kmeans_lut$"):
        quantize_weights(make_model(), 4, "kmeans_lut", lut_function=sign_table)


def test_no_tensor_selected_is_a_clear_error_and_writes_nothing(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    with pytest.raises(QuantzooError, match=r"f\.onnx: no tensor selected for compression .*elements < min_elements"):
        quantize_file(src, dst, mode="linear", nbits=4, min_elements=10**9)
    assert not dst.exists()


def test_unique_lut_with_too_many_values_says_how_many_there_are():
    with pytest.raises(QuantzooError, match=r"tensor 'conv.w' has 2304 distinct values; unique_lut at nbits=4 "
                                            r"holds at most 16; use nbits >= 12"):
        quantize_weights(make_model(), 4, "unique_lut")


def test_custom_lut_with_a_wrong_table_shape_names_the_function():
    def two_d(weights, nbits):
        return np.zeros((2, 2), np.float32), np.zeros(weights.size, np.int64)

    with pytest.raises(QuantzooError, match=r"lut_function .*two_d: lut must be a 1-D numeric array of 1..4 entries "
                                            r"for nbits=2, found shape \(2, 2\)"):
        quantize_weights(make_model(), 2, "custom_lut", lut_function=two_d)


def test_custom_lut_with_an_out_of_range_code_names_the_function():
    def too_far(weights, nbits):
        return np.zeros(4, np.float32), np.full(weights.size, 4, np.int64)

    with pytest.raises(QuantzooError, match=r"too_far: codes must lie in \[0, 3\] .*found \[4, 4\]"):
        quantize_weights(make_model(), 2, "custom_lut", lut_function=too_far)


def test_custom_lut_by_module_and_function_name(tmp_path, monkeypatch):
    (tmp_path / "my_tables.py").write_text(
        "import numpy as np\n"
        "def halves(weights, nbits):\n"
        "    lut = np.array([-0.5, 0.5], np.float32)\n"
        "    return lut, (weights >= 0).astype(np.int32).ravel()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    q = quantize_weights(make_model(), 3, "custom_lut", lut_function="my_tables:halves")
    got = decoded_in_onnxruntime(q)
    assert set(np.unique(got["gemm.w"]).tolist()) == {-0.5, 0.5}
    assert {p.key: p.value for p in q.metadata_props}["quantzoo.lut_function"] == "my_tables:halves"
    with pytest.raises(QuantzooError, match="lut_function 'my_tables:nope': module 'my_tables' has no function 'nope'"):
        quantize_weights(make_model(), 3, "custom_lut", lut_function="my_tables:nope")


# --- the command line (quantize.cli_quantize runs the engine) ------------------------------------

def test_cli_quantizes_and_prints_a_row_per_tensor(tmp_path, capsys):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    assert main(["quantize", str(src), "-o", str(dst), "--mode", "kmeans_lut", "--nbits", "3",
                 "--exclude", "else.*"]) == 0
    out = capsys.readouterr().out
    assert "kmeans_lut 3-bit per_tensor: 4 tensors compressed" in out
    assert "gemm.w" in out and "Gemm" in out and "excluded by pattern 'else.*'" in out
    assert dst.exists()


def test_cli_exit_codes_for_bad_nbits_and_bad_file(tmp_path, capsys):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)
    assert main(["quantize", str(src), "-o", str(tmp_path / "q.onnx"), "--mode", "linear", "--nbits", "9"]) == 2
    assert "nbits must be an integer from 1 to 8" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xff" * 50)
    assert main(["quantize", str(bad), "-o", str(tmp_path / "q.onnx"), "--mode", "fp16"]) == 1
    assert "is not an ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()


def test_representation_defaults_to_auto_and_is_checked(tmp_path, capsys):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)
    report = quantize_file(src, tmp_path / "q.onnx", mode="linear", nbits=4)
    assert {r.representation for r in report.tensors} == {"decode"}  # no tensor near native.AUTO_MIN_ELEMENTS
    with pytest.raises(UsageError, match="representation must be one of auto, decode, native"):
        quantize_file(src, tmp_path / "x.onnx", mode="linear", nbits=4, representation="qdq")
    assert main(["quantize", str(src), "-o", str(tmp_path / "d.onnx"), "--mode", "linear", "--nbits", "4",
                 "--representation", "decode"]) == 0
    assert (tmp_path / "d.onnx").read_bytes() == (tmp_path / "q.onnx").read_bytes()
    with pytest.raises(SystemExit):
        main(["quantize", str(src), "-o", str(tmp_path / "e.onnx"), "--mode", "linear", "--representation", "qdq"])
