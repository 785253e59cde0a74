"""compare_models and prepare: real onnxruntime, tiny models made here, and the catalog's real
models on their real datasets (a compressed copy is made here by rounding weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantzoo.cache import Cache
from quantzoo.cli import main
from quantzoo.compare import compare_models, prepare
from quantzoo.errors import QuantzooError, UsageError
from tinymodels import classifier, compressed_copy, rows, scale_model


# --- behaviour on tiny models ---------------------------------------------------------------------

def test_a_ten_percent_larger_output_scores_twenty_db_snr_on_every_sample(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0, (None, 3, 4, 4))
    b = scale_model(tmp_path / "b.onnx", 1.1, (None, 3, 4, 4))
    data = [{"x": np.full((3, 4, 4), i + 1.0, np.float32)} for i in range(5)]
    c = compare_models(a, b, data, task="dense", cache=False)
    m = c.metrics["y"]
    # pooled over the dataset: one figure, no per-sample spread; every resample also gives 20 dB
    assert m["snr_db"] == {"mean": 20.0, "std": None, "n": 5, "ci95": [20.0, 20.0]}
    assert m["cosine"]["mean"] == pytest.approx(1.0)
    assert m["max_abs_error"]["mean"] == pytest.approx(np.mean([0.1 * (i + 1) for i in range(5)]), rel=1e-5)
    assert set(m) == {"snr_db", "psnr_db", "cosine", "max_abs_error"}


def test_ctc_outputs_report_the_pooled_snr_of_their_probabilities_through_the_float_output_cache(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0, (None, 4, 12))
    b = scale_model(tmp_path / "b.onnx", 1.1, (None, 4, 12))
    rng = np.random.default_rng(3)
    data = [{"x": rng.random((4, 12)).astype(np.float32)} for _ in range(6)]
    for _ in range(2):  # computed, then read back from derived/float-outputs
        ev = prepare(a, data, task="text-recognition", cache=tmp_path / "cache")
        m = ev.compare(b).metrics["y"]
        assert m["snr_db"]["mean"] == pytest.approx(20.0, abs=1e-4) and m["snr_db"]["n"] == 6
        assert {"string_agreement", "cer"} <= set(m)
    assert ev.cache_hit


def test_classification_logits_report_their_pooled_snr(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(4, 6) / 7
    c = compare_models(classifier(tmp_path / "a.onnx", w), classifier(tmp_path / "b.onnx", w * 1.1), rows(8),
                       cache=False)
    assert c.metrics["logits"]["snr_db"]["mean"] == pytest.approx(20.0, abs=1e-4)


def test_classifiers_that_swap_two_classes_agree_everywhere_except_where_those_classes_win(tmp_path):
    w = np.eye(4, 6)
    swapped = w[:, [1, 0, 2, 3, 4, 5]]
    a, b = classifier(tmp_path / "a.onnx", w), classifier(tmp_path / "b.onnx", swapped)
    data = [{"x": np.eye(4, dtype=np.float32)[i]} for i in range(4)]  # sample i -> class i
    c = compare_models(a, b, data, cache=False)
    assert c.task is None and c.metrics["logits"]["top1_agreement"] == {
        "mean": 0.5, "std": 0.5, "n": 4, "ci95": [0.150039, 0.849961]}  # Wilson, 2 of 4
    assert c.metrics["logits"]["top5_agreement"]["mean"] == 1.0


def test_the_same_comparison_twice_gives_byte_identical_json(tmp_path):
    a = classifier(tmp_path / "a.onnx", np.arange(24, dtype=np.float32).reshape(4, 6) / 7)
    b = compressed_copy(a, tmp_path / "b.onnx", bits=2)
    one = compare_models(a, b, rows(40), batch_size=8, cache=tmp_path / "c1").to_dict(timings=False)
    two = compare_models(a, b, rows(40), batch_size=8, cache=tmp_path / "c2").to_dict(timings=False)
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert one["schema_version"] == 1 and one["dataset"]["n"] == 40
    assert one["sizes"]["original_bytes"] == a.stat().st_size


def test_float_outputs_are_computed_once_and_read_back_for_the_next_variant(tmp_path):
    cache = Cache(tmp_path / "cache")
    a = scale_model(tmp_path / "a.onnx", 2.0)
    b = scale_model(tmp_path / "b.onnx", 2.0)
    c = scale_model(tmp_path / "c.onnx", 1.0)
    first = compare_models(a, b, rows(6), task="dense", cache=cache)
    assert first.timings["float_cached"] is False
    [npz] = (cache.root / "derived" / "float-outputs").glob("*.npz")
    assert first.metrics["y"]["snr_db"]["mean"] == pytest.approx(138.47, abs=0.01)

    # Prove the second variant reads the cache instead of rerunning the float model: halve the
    # cached reference; a variant computing y = x * 1.0 now agrees with it exactly.
    with np.load(npz) as z:
        halved = {k: z[k] / 2 if k.startswith("out") else z[k] for k in z.files}
    with open(npz, "wb") as f:
        np.savez(f, **halved)
    second = compare_models(a, c, rows(6), task="dense", cache=cache)
    assert second.timings["float_cached"] is True
    assert second.metrics["y"]["snr_db"]["mean"] == pytest.approx(138.47, abs=0.01)
    assert len(list((cache.root / "derived" / "float-outputs").glob("*.npz"))) == 1


def test_prepare_once_compares_many_variants_against_one_float_run(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    ev = prepare(a, rows(10), task="dense", cache=False)
    snrs = [ev.compare(scale_model(tmp_path / f"v{k}.onnx", f)).metrics["y"]["snr_db"]["mean"]
            for k, f in enumerate([1.1, 1.01])]
    assert snrs == pytest.approx([20.0, 40.0], abs=1e-4)


def test_a_variant_with_different_inputs_or_outputs_is_refused(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    other = scale_model(tmp_path / "other.onnx", 1.0, out_name="z")
    with pytest.raises(QuantzooError, match="does not have the same inputs and outputs"):
        compare_models(a, other, rows(2), cache=False)


def test_an_input_shape_the_model_cannot_take_names_the_input_and_both_shapes(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0, (None, 3, 8, 8))
    with pytest.raises(QuantzooError) as e:
        compare_models(a, a, [{"x": np.zeros((3, 8, 9), np.float32)}], cache=False)
    msg = str(e.value)
    assert "input 'x' of a.onnx takes shape [N, 3, 8, 8]" in msg and "[N, 3, 8, 9]" in msg


def test_a_folder_of_images_uses_default_preprocessing_and_skips_other_files(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0, (None, 3, 8, 8))
    b = scale_model(tmp_path / "b.onnx", 0.5, (None, 3, 8, 8))
    d = tmp_path / "imgs"
    d.mkdir()
    for i, size in enumerate([(8, 8), (30, 20), (5, 9)]):
        Image.new("RGB", size, (40 * i + 10, 20, 200)).save(d / f"im{i}.png")
    (d / "readme.txt").write_text("hello")
    c = compare_models(a, b, d, cache=False)
    assert c.dataset["n"] == 3 and c.dataset["skipped"] == 1
    assert c.dataset["skipped_files"][0]["key"] == "readme.txt"
    assert c.metrics["y"]["snr_db"]["mean"] == pytest.approx(20 * np.log10(2), abs=1e-4)


def test_a_folder_with_nothing_usable_is_an_error_naming_what_was_skipped(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0, (None, 3, 8, 8))
    d = tmp_path / "junk"
    d.mkdir()
    (d / "a.txt").write_text("no image here")
    with pytest.raises(QuantzooError, match=r"no usable samples .* \(1 skipped, first: a.txt: not a readable image"):
        compare_models(a, a, d, cache=False)


def test_a_missing_folder_and_a_missing_model_are_clear_errors(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    with pytest.raises(UsageError, match="no such file or folder: .*nowhere"):
        compare_models(a, a, str(tmp_path / "nowhere"), cache=False)
    with pytest.raises(QuantzooError, match="no such model file"):
        compare_models(tmp_path / "missing.onnx", a, rows(1), cache=False)
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(QuantzooError, match="onnxruntime cannot load"):
        compare_models(tmp_path / "text.onnx", a, rows(1), cache=False)


# --- the catalog's real models on their real data ----------------------------------------------

@pytest.fixture(scope="module")
def variants(tmp_path_factory, catalog_model):
    """Real catalog models and 4-bit compressed copies of them (made once per module)."""
    d = tmp_path_factory.mktemp("variants")
    made = {}

    def get(model_id: str, bits: int = 4) -> tuple[Path, Path]:
        if (model_id, bits) not in made:
            src = catalog_model(model_id)
            made[model_id, bits] = (src, compressed_copy(src, d / f"{model_id}-{bits}.onnx", bits))
        return made[model_id, bits]

    return get


@pytest.fixture(scope="module")
def float_cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("compare-cache"))


@pytest.mark.slow
def test_magika_reports_agreement_and_accuracy_over_the_evaluation_part_of_the_pygments_files(
        variants, catalog_dataset, float_cache, tmp_path, capsys):
    orig, q = variants("magika-standard-v3", 6)
    out = tmp_path / "magika.json"
    rc = main(["compare", str(orig), str(q), "--model", "magika-standard-v3", "--json", str(out),
               "--cache", str(float_cache.root)])
    assert rc == 0
    root = catalog_dataset("pygments-examplefiles")
    every = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".output")
             and p.name != "conftest.py" and not p.name.startswith(".")]
    from quantzoo.compare import split

    evaluation = split.select([p.relative_to(root).as_posix() for p in every], 0.2, "evaluation")
    doc = json.loads(out.read_text())
    m = doc["outputs"]["target_label"]
    assert doc["dataset"]["id"] == "pygments-examplefiles" and doc["dataset"]["n"] == len(evaluation) > 500
    assert doc["dataset"]["split"]["part"] == "evaluation" and len(every) > 600
    assert m["top1_agreement"]["n"] == len(evaluation) and 0.5 < m["top1_agreement"]["mean"] <= 1.0
    # labels map to magika's content types for over a hundred files; the float model gets most right
    assert m["accuracy_float"]["n"] == m["accuracy_quantized"]["n"] > 100
    assert m["accuracy_float"]["mean"] > 0.7
    assert "accuracy_quantized" in capsys.readouterr().out


@pytest.mark.slow
def test_magika_with_data_dir_counts_every_file_in_it(variants, catalog_dataset, tmp_path):
    orig, q = variants("magika-standard-v3", 6)
    src = catalog_dataset("pygments-examplefiles") / "python"
    d = tmp_path / "mixed"
    d.mkdir()
    files = sorted(src.iterdir())[:6]
    for f in files:
        (d / f.name).write_bytes(f.read_bytes())
    (d / "empty").write_bytes(b"")
    (d / "sub").mkdir()
    (d / "sub" / "tiny.txt").write_bytes(b"hi")
    from quantzoo.registry import load_registry

    reg = load_registry(Path(__file__).resolve().parent.parent / "zoo")
    c = compare_models(orig, q, d, model="magika-standard-v3", registry=reg, cache=False)
    assert c.dataset["n"] == len(files) + 2 and c.dataset["skipped"] == 0
    # the file in sub/ is labelled 'sub' (not a magika type): no sample gets an accuracy label
    assert "accuracy_float" not in c.metrics["target_label"] or c.metrics["target_label"]["accuracy_float"]["n"] == 0


@pytest.mark.slow
def test_ppocr_rec_reports_string_agreement_and_cer_on_rendered_lines(variants, registry, float_cache):
    orig, q = variants("ppocr-v4-rec", 4)
    ev = prepare(orig, model="ppocr-v4-rec", registry=registry, cache=float_cache, limit=12)
    same = ev.compare(orig).metrics["softmax_11.tmp_0"]
    assert {k: same["string_agreement"][k] for k in ("mean", "std", "n")} == {"mean": 1.0, "std": 0.0, "n": 12}
    assert same["snr_db"]["mean"] == same["snr_db"]["ci95"][0] > 138  # the float model against itself
    assert same["cer_labels"]["mean"] < 0.05  # the float model reads the rendered lines
    m = ev.compare(q).metrics["softmax_11.tmp_0"]
    assert set(m) == {"string_agreement", "cer", "cer_labels", "snr_db"} and m["cer"]["n"] == 12


@pytest.mark.slow
def test_ppocr_det_reports_snr_psnr_and_iou_on_the_photographs(variants, registry, float_cache):
    orig, q = variants("ppocr-v4-det", 4)
    c = compare_models(orig, q, model="ppocr-v4-det", registry=registry, cache=float_cache, limit=3)
    m = c.metrics["sigmoid_0.tmp_0"]
    assert set(m) == {"snr_db", "psnr_db", "cosine", "max_abs_error", "iou"}
    assert m["iou"]["n"] == 3 and 0.0 <= m["iou"]["mean"] <= 1.0
    assert m["snr_db"]["mean"] < 100  # 4-bit weights change the maps measurably
    assert c.dataset["id"] == "skimage-photos"


@pytest.mark.slow
def test_ppocr_cls_reports_agreement_and_accuracy_on_lines_turned_0_or_180_degrees(variants, registry, float_cache):
    orig, q = variants("ppocr-mobile-v2-cls", 6)
    c = compare_models(orig, q, model="ppocr-mobile-v2-cls", registry=registry, cache=float_cache, limit=40)
    m = c.metrics["save_infer_model/scale_0.tmp_1"]
    assert set(m) == {"top1_agreement", "accuracy_float", "accuracy_quantized", "snr_db"}
    assert m["accuracy_float"]["n"] == 40 and m["accuracy_float"]["mean"] > 0.9


# --- extending: a metric is one record ----------------------------------------------------------

def test_a_metric_registered_in_process_is_computed_by_compare_models_and_formatted(tmp_path, monkeypatch):
    from quantzoo.compare.metrics import METRICS, Metric, format_metric

    def sign_agreement(ref, test, ctx):
        return [float(np.array_equal(np.sign(r), np.sign(t))) for r, t in zip(ref, test)]

    monkeypatch.setitem(METRICS, "sign_agreement", Metric(
        "sign_agreement", "sign agreement", "fraction", True, True, "share of samples whose signs all agree",
        kinds=("dense", "detection"), compute=sign_agreement))
    a = scale_model(tmp_path / "a.onnx", 1.0)
    ev = prepare(a, rows(4), task="dense", cache=tmp_path / "cache")
    same = ev.compare(scale_model(tmp_path / "same.onnx", 2.0)).metrics["y"]["sign_agreement"]
    flipped = ev.compare(scale_model(tmp_path / "flip.onnx", -1.0)).metrics["y"]["sign_agreement"]
    assert same == {"mean": 1.0, "std": 0.0, "n": 4, "ci95": [0.5101092, 1.0]}
    assert flipped == {"mean": 0.0, "std": 0.0, "n": 4, "ci95": [0.0, 0.4898908]}
    assert format_metric("sign_agreement", same["mean"]) == "100.00 %"
    assert "sign_agreement" not in compare_models(a, a, rows(2), task="classification", cache=False).metrics["y"]


def test_a_model_id_needs_a_loaded_registry(tmp_path):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    with pytest.raises(UsageError, match="model id 'magika-standard-v3' needs the registry"):
        compare_models(a, a, rows(1), model="magika-standard-v3", cache=False)


# --- custom ops ----------------------------------------------------------------------------------------

class _Double:
    """The implementation of the test's ai.test.compare.Double custom op: x * factor."""

    def __init__(self, factor):
        self.factor = factor

    def evaluate(self, x):
        return x * self.factor

    def output_shapes(self, shape):
        return [shape]


def _custom_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Double", ["h"], ["y"], domain="ai.test.compare", factor=2.0)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["h"]), node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                  helper.make_opsetid("ai.test.compare", 1)]), path)
    return path


def test_a_model_with_a_custom_op_compares_with_its_implementation(tmp_path):
    m = _custom_model(tmp_path / "custom.onnx")
    data = [{"x": np.array([i, -1.0, 0.5, 2.0 - i], np.float32)} for i in range(4)]
    c = compare_models(m, m, data, custom_ops={"ai.test.compare.Double": _Double}, cache=False)
    assert c.metrics["y"]["top1_agreement"]["mean"] == 1.0


def test_a_model_with_a_custom_op_and_no_implementation_names_the_op(tmp_path):
    m = _custom_model(tmp_path / "custom.onnx")
    with pytest.raises(QuantzooError, match=r"custom op ai\.test\.compare\.Double with no implementation"):
        compare_models(m, m, [{"x": np.zeros(4, np.float32)}], cache=False)


def test_the_cli_takes_custom_ops_as_module_class(tmp_path, capsys):
    from argparse import Namespace

    from quantzoo.compare.cli import cli_compare

    m = _custom_model(tmp_path / "custom.onnx")
    np.save(tmp_path / "a.npy", np.ones(4, np.float32))
    args = Namespace(original=str(m), quantized=str(m), model=None, dataset=None, data=str(tmp_path / "a.npy"),
                     json=None, batch_size=None, limit=None, zoo=None, cache=str(tmp_path / "cache"),
                     custom_op=["ai.test.compare.Double=test_compare_core:_Double"])
    assert cli_compare(args) == 0
    assert "top1_agreement" in capsys.readouterr().out
