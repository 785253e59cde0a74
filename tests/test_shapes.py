"""`quantzoo shapes`: fixed-shape models exported from torch in the test made flexible, verified,
refused where a size is baked into the weights, kept by every quantization mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from quantzoo.cli import main  # noqa: E402
from quantzoo.errors import QuantzooError, UsageError  # noqa: E402
from quantzoo.quantize import quantize_file  # noqa: E402
from quantzoo.quantize.variants import DEFAULT_VARIANTS, parse_variant  # noqa: E402
from quantzoo.shapes import GRAMMAR, METADATA_KEY, InputSpec, make_flexible, parse_spec  # noqa: E402


class _Head(torch.nn.Module):
    """conv -> reshape to [1, C*H*W] (the batch of 1 baked into a Constant) -> linear."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).reshape(1, 4 * 8 * 8))


class _Fcn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = torch.nn.Conv2d(3, 8, 3, padding=1, stride=2), torch.nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


def _export(net: torch.nn.Module, shape: tuple, path: Path) -> Path:
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    torch.onnx.export(net.eval(), (torch.randn(*shape),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"])
    return path


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    return _export(_Head(), (1, 3, 8, 8), tmp_path_factory.mktemp("head") / "head.onnx")


@pytest.fixture(scope="module")
def fcn(tmp_path_factory) -> Path:
    return _export(_Fcn(), (1, 3, 224, 224), tmp_path_factory.mktemp("fcn") / "fcn.onnx")


def _run(model, x: np.ndarray) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _x(*shape: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _dims(vi) -> list:
    return [d.dim_param or d.dim_value or None for d in vi.type.tensor_type.shape.dim]


def test_a_reshape_that_bakes_in_batch_1_is_rewritten_and_verified_at_the_bounds(head):
    model, report = make_flexible(head, {"x": "1..32,3,8,8"})
    assert _dims(model.graph.input[0]) == ["x_dim0", 3, 8, 8]
    assert _dims(model.graph.output[0]) == ["x_dim0", 5]
    assert len(report.rewrites) == 1 and "'/Reshape' (Reshape): [1, 256] -> [0, 256]" in report.rewrites[0]
    assert report.checked == [{"x": [1, 3, 8, 8]}, {"x": [32, 3, 8, 8]}]
    assert report.max_abs_diff <= 1e-6
    x = _x(1, 3, 8, 8)
    np.testing.assert_array_equal(_run(model, x), _run(head, x))
    batch = _x(32, 3, 8, 8)  # each row of a batch is that sample's own output: the rewrite keeps the meaning
    rows = np.concatenate([_run(head, batch[i:i + 1]) for i in range(32)])
    np.testing.assert_allclose(_run(model, batch), rows, atol=1e-5)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta[METADATA_KEY]) == {"x": {"ranges": [[1, 32], [3, 3], [8, 8], [8, 8]],
                                                    "original": [1, 3, 8, 8]}}
    assert not model.graph.value_info and not any(n.op_type == "Constant" for n in model.graph.node)


def test_a_fully_convolutional_net_runs_at_each_enumerated_size(fcn):
    model, report = make_flexible(str(fcn), ["x=1x3x224x224,1x3x320x320"])
    assert _dims(model.graph.input[0]) == [1, 3, "x_dim2", "x_dim3"]
    assert _dims(model.graph.output[0]) == [1, 2, None, None]  # inference cannot name a strided size
    assert report.rewrites == [] and report.checked == [{"x": [1, 3, 224, 224]}, {"x": [1, 3, 320, 320]}]
    assert _run(model, _x(1, 3, 320, 320)).shape == (1, 2, 160, 160)
    assert json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])["x"]["shapes"] == \
        [[1, 3, 224, 224], [1, 3, 320, 320]]


def test_a_spatial_size_baked_into_the_linear_weights_is_an_error_naming_the_node(head):
    with pytest.raises(QuantzooError, match=r"node '/fc/Gemm' \(Gemm\): its operand 'fc.weight' takes a fixed 256 "
                                            r"features .* baked into the weights"):
        make_flexible(head, {"x": "1,3,8..16,8..16"})


class _Skip(torch.nn.Module):
    """x + upsample(downsample(x)): the sum needs an even size."""

    def __init__(self):
        super().__init__()
        self.down = torch.nn.Conv2d(3, 3, 3, padding=1, stride=2)

    def forward(self, x):
        return x + torch.nn.functional.interpolate(self.down(x), scale_factor=2.0)


def test_a_promised_shape_the_model_does_not_run_at_is_an_error_naming_it(tmp_path):
    path = _export(_Skip(), (1, 3, 32, 32), tmp_path / "skip.onnx")
    with pytest.raises(QuantzooError, match=r"the flexible model does not run at x=1x3x33x32: .*Add"):
        make_flexible(path, {"x": "1,3,32..33,32"})
    assert make_flexible(path, {"x": "1,3,32..34,32"})[1].checked == [{"x": [1, 3, 32, 32]}, {"x": [1, 3, 34, 32]}]


@pytest.mark.parametrize("variant", DEFAULT_VARIANTS)
def test_every_default_variant_keeps_the_shapes_of_its_flexible_float_model(head, fcn, variant, tmp_path):
    v = parse_variant(variant)
    for src, spec, bounds in ((head, "x=1..32,3,8,8", [(1, 3, 8, 8), (32, 3, 8, 8)]),
                              (fcn, "x=1..2,3,64..320,64..320", [(1, 3, 64, 64), (2, 3, 320, 64), (2, 3, 320, 320)])):
        model, _ = make_flexible(src, [spec])
        onnx.save(model, tmp_path / "flex.onnx")
        quantize_file(tmp_path / "flex.onnx", tmp_path / "q.onnx", mode=v.mode, nbits=v.nbits,
                      granularity=v.granularity, min_elements=64)
        q = onnx.load(tmp_path / "q.onnx")
        assert _dims(q.graph.input[0]) == _dims(model.graph.input[0])
        promise = {p.key: p.value for p in model.metadata_props}["quantzoo.shapes"]
        assert {p.key: p.value for p in q.metadata_props}["quantzoo.shapes"] == promise  # the promise travels
        for shape in bounds:
            x = _x(*shape)
            assert _run(q, x).shape == _run(model, x).shape


def test_openvino_runs_the_flexible_model_at_a_bound(head, tmp_path):
    ov = pytest.importorskip("openvino")
    model, _ = make_flexible(head, {"x": "1..32,3,8,8"})
    onnx.save(model, tmp_path / "flex.onnx")
    compiled = ov.Core().compile_model(str(tmp_path / "flex.onnx"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = _x(32, 3, 8, 8)
    np.testing.assert_allclose(np.asarray(compiled({"x": x})[compiled.output(0)]), _run(model, x), atol=1e-4)


def test_the_cli_writes_the_model_and_prints_the_report(head, tmp_path, capsys):
    out = tmp_path / "flex.onnx"
    assert main(["shapes", str(head), "-o", str(out), "--input", "x=1..32,3,8,8"]) == 0
    printed = capsys.readouterr().out
    assert "x: x_dim0 x 3 x 8 x 8" in printed and "rewrote node '/Reshape'" in printed
    assert "runs at x=32x3x8x8" in printed and f"wrote {out}" in printed
    assert METADATA_KEY in {p.key for p in onnx.load(out).metadata_props}


def test_the_cli_exit_codes_and_nothing_written_on_error(head, tmp_path, capsys):
    out = tmp_path / "flex.onnx"
    assert main(["shapes", str(head), "-o", str(out), "--input", "x=1,3,8..16,8..16"]) == 1
    assert "/fc/Gemm" in capsys.readouterr().err
    assert main(["shapes", str(head), "-o", str(out), "--input", "x=1..0,3,8,8"]) == 2
    assert GRAMMAR.splitlines()[1] in capsys.readouterr().err
    assert main(["shapes", str(head), "-o", str(out), "--input", "y=N,3,8,8"]) == 2
    assert "no input 'y'; its inputs: x" in capsys.readouterr().err
    assert main(["shapes", str(head), "-o", str(out), "--input", "x=N,3,8"]) == 2
    assert main(["shapes", str(head), "-o", str(out), "--input", "x=N,4,8,8"]) == 2
    assert "dimension 1 is 3 in the model, the spec fixes it to 4" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, want", [
    ("x=1..32,3,48,32..2048", InputSpec("x", ranges=((1, 32), (3, 3), (48, 48), (32, 2048)))),
    ("x=N,3,*,7..", InputSpec("x", ranges=((1, None), (3, 3), (1, None), (7, None)))),
    ("in:0=1x3x224x224, 1x3x320x320", InputSpec("in:0", shapes=((1, 3, 224, 224), (1, 3, 320, 320)))),
    ("a=b=2x2,2x2", InputSpec("a=b", shapes=((2, 2),))),
])
def test_the_spec_grammar(text, want):
    assert parse_spec(text) == want


@pytest.mark.parametrize("text", ["x", "=1,2", "x=", "x=0..3", "x=1x3,1", "x=1x3,1x3x4", "x=1...3", "x=-1", "x=n"])
def test_a_spec_outside_the_grammar_is_a_usage_error_showing_it(text):
    with pytest.raises(UsageError) as e:
        parse_spec(text)
    assert str(e.value).endswith(GRAMMAR) and e.value.exit_code == 2


def test_an_open_upper_bound_is_checked_at_twice_the_original_size():
    assert InputSpec("x", ranges=((1, None), (3, 3))).checks([4, 3]) == [(1, 3), (8, 3)]


def test_an_input_declared_with_minus_one_for_any_size_is_flexible_too(fcn, tmp_path):
    # PaddleOCR's exports declare a dynamic batch as dim_value -1 rather than a named dim
    model = onnx.load(fcn)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    flex, _ = make_flexible(model, ["x=1..4,3,224,224"])
    assert _run(flex, _x(4, 3, 224, 224)).shape[0] == 4


def _affine_model(tmp_path: Path) -> tuple[Path, dict]:
    """tinymodels' custom-op model (MatMul → custom Affine) with its batch fixed at 1, and its class."""
    from quantzoo.customops import import_class
    from tinymodels import AFFINE_CODE, CUSTOM_OP, custom_op_model

    model = onnx.load(str(custom_op_model(tmp_path / "affine.onnx")))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp_path / "affine.onnx")
    (tmp_path / "affine_impl.py").write_text(AFFINE_CODE)
    return tmp_path / "affine.onnx", {CUSTOM_OP: import_class("affine_impl:Affine", tmp_path / "affine_impl.py")}


def test_a_model_with_a_custom_layer_is_made_flexible_with_its_class_and_checked(tmp_path):
    path, ops = _affine_model(tmp_path)
    with pytest.raises(QuantzooError, match=r"custom op ai\.test\.tiny\.Affine with no implementation"):
        make_flexible(path, ["x=1..16,64"])
    model, report = make_flexible(path, ["x=1..16,64"], ops)
    assert report.checked == [{"x": [1, 64]}, {"x": [16, 64]}] and report.max_abs_diff == 0.0
    assert _dims(model.graph.input[0]) == ["x_dim0", 64]


def test_the_cli_takes_the_custom_layer_class(tmp_path, capsys, monkeypatch):
    path, _ = _affine_model(tmp_path)
    monkeypatch.chdir(tmp_path)  # affine_impl.py beside the command line, as `quantzoo compare` takes it
    out = tmp_path / "flex.onnx"
    assert main(["shapes", str(path), "-o", str(out), "--input", "x=1..16,64",
                 "--custom-op", "ai.test.tiny.Affine=affine_impl:Affine"]) == 0
    assert "runs at x=16x64" in capsys.readouterr().out and out.is_file()
