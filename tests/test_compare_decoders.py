"""Detection decoders and the ``boxes`` output kind (compare/decoders.py): synthetic outputs
with known faces and words, and a tiny CenterFace-like ONNX model compared end to end."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.compare import compare_models
from quantzoo.compare import decoders as DEC
from quantzoo.compare.kinds import compare_batch
from quantzoo.errors import QuantzooError


def test_blazeface_front_has_896_anchors_on_two_grids():
    a = DEC.ssd_anchors(128, (8, 16, 16, 16))
    assert a.shape == (896, 2)
    first, second = a[:512], a[512:]
    # 16x16 cells, 2 anchors each, row by row; then 8x8 cells with 6 anchors each
    assert np.unique(first[:, 0]).tolist() == pytest.approx([(i + 0.5) / 16 for i in range(16)])
    assert np.unique(second[:, 1]).tolist() == pytest.approx([(i + 0.5) / 8 for i in range(8)])
    assert (first[0] == first[1]).all() and first[2].tolist() == [1.5 / 16, 0.5 / 16]
    assert (second[:6] == second[0]).all() and second[6].tolist() == [1.5 / 8, 0.5 / 8]
    assert a[-1].tolist() == [7.5 / 8, 7.5 / 8]


def _centerface_maps(h=8, w=8):
    heat = np.zeros((1, h, w), np.float32)
    scale = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    lms = np.zeros((10, h, w), np.float32)
    return heat, scale, offset, lms


def test_centerface_decodes_a_synthetic_face_with_size_offset_and_landmarks():
    heat, scale, offset, lms = _centerface_maps()
    heat[0, 3, 2] = 0.8
    scale[0, 3, 2], scale[1, 3, 2] = np.log(3.0), np.log(2.0)   # 12 px high, 8 px wide
    offset[:, 3, 2] = 0.25                                       # a quarter cell down and right
    lms[0::2, 3, 2] = 0.5                                        # every landmark half-way down ...
    lms[1::2, 3, 2] = np.linspace(0, 1, 5)                       # ... and spread across the box
    d = DEC.decode_centerface([heat, scale, offset, lms], {})
    # centre x = (2 + 0.25 + 0.5) * 4 = 11, y = (3 + 0.25 + 0.5) * 4 = 15
    np.testing.assert_allclose(d["boxes"], [[7.0, 9.0, 15.0, 21.0]], atol=1e-5)
    assert d["scores"].tolist() == pytest.approx([0.8])
    np.testing.assert_allclose(d["points"][0], [[7 + 8 * t, 15.0] for t in np.linspace(0, 1, 5)], atol=1e-5)


def test_centerface_keeps_the_best_of_neighbouring_peaks_and_drops_low_ones():
    heat, scale, offset, lms = _centerface_maps()
    scale[:] = np.log(4.0)                     # 16 px boxes: neighbouring cells overlap
    heat[0, 4, 4], heat[0, 4, 5], heat[0, 0, 0] = 0.9, 0.7, 0.4
    d = DEC.decode_centerface([heat, scale, offset, lms], {})
    assert d["scores"].tolist() == pytest.approx([0.9])
    assert len(DEC.decode_centerface([heat, scale, offset, lms], {"score_threshold": 0.3, "nms_iou": 0.9})["boxes"]) == 3


def test_blazeface_decodes_an_anchor_and_blends_its_neighbour():
    scores = np.full((896, 1), -20.0)
    reg = np.zeros((896, 16))
    scores[512 + 6 * 9] = 3.0          # 8x8 grid, cell (1, 1): centre (24, 24) px
    scores[512 + 6 * 9 + 1] = 3.0      # its second anchor, same cell
    reg[512 + 6 * 9, 2:4] = 20.0
    reg[512 + 6 * 9 + 1, :4] = [2.0, 0.0, 20.0, 20.0]
    reg[512 + 6 * 9, 4:6] = [-5.0, -3.0]   # first keypoint
    d = DEC.decode_blazeface([scores[:512], scores[512:], reg[:512], reg[512:]], {})
    # equal scores: the box is the mean of the two (centre x 24 and 26)
    np.testing.assert_allclose(d["boxes"], [[15.0, 14.0, 35.0, 34.0]])
    assert d["points"][0, 0].tolist() == pytest.approx([24 - 2.5, 24 - 1.5])
    with pytest.raises(QuantzooError, match="896 anchors"):
        DEC.decode_blazeface([scores[:500], reg[:500]], {})


def test_craft_groups_characters_linked_by_affinity_into_one_word():
    maps = np.zeros((2, 20, 40))
    maps[0, 5:10, 2:6] = 0.9      # character 1
    maps[0, 5:10, 10:14] = 0.9    # character 2
    maps[1, 6:9, 6:10] = 0.6      # the link between them
    maps[0, 15:18, 30:34] = 0.5   # a faint blob: grouped, but its peak is below text_threshold
    d = DEC.decode_craft([maps], {})
    assert d["boxes"].tolist() == [[4.0, 10.0, 28.0, 20.0]]
    # without the link, two words
    maps[1] = 0
    assert len(DEC.decode_craft([maps], {"min_size": 4})["boxes"]) == 2


def test_detection_maps_with_a_decoder_report_box_agreement():
    ref = np.zeros((1, 2, 20, 40))
    ref[0, 0, 5:10, 2:6] = ref[0, 0, 5:10, 20:24] = 0.9
    test = ref.copy()
    test[0, 0, 5:10, 20:24] = 0.3   # the compressed model loses the second word
    out = compare_batch("detection", ref, test, {"options": {"decoder": "craft", "min_size": 4, "iou_threshold": 0.4}})
    assert out["detection_f1"] == out["detection_recall"] == out["detection_precision"] == [[1.0, 2.0, 1.0]]
    assert out["iou"] == [0.5]
    assert "detection_f1" not in compare_batch("detection", ref, test, {"options": {}})


def test_an_unknown_decoder_names_the_known_ones():
    with pytest.raises(QuantzooError, match="centerface, blazeface, craft"):
        DEC.decoder_of({"decoder": "yolo"})


# --- end to end: a tiny CenterFace-like model ------------------------------------------------------

def _tiny_centerface(path: Path, heat_gain: float) -> Path:
    """x [N, 3, 16, 16] -> heatmap (channel 0, 4x4 average pooled, times `heat_gain`), scale
    (channels 1-2 pooled), offset (zeros) and landmarks (zeros) at 4x4."""
    nodes = [
        helper.make_node("Split", ["x", "split"], ["c0", "c12"], axis=1),
        helper.make_node("AveragePool", ["c0"], ["p0"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Mul", ["p0", "gain"], ["heat"]),
        helper.make_node("AveragePool", ["c12"], ["scale"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Mul", ["scale", "zero"], ["offset"]),
        helper.make_node("Concat", ["offset"] * 5, ["lms"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array([1, 2], np.int64), "split"),
             numpy_helper.from_array(np.array(heat_gain, np.float32), "gain"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    g = helper.make_graph(nodes, "tiny_centerface", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 16, 16])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("heat", "scale", "offset", "lms")],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_face_detector_is_compared_by_its_decoded_faces(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        x = np.zeros((3, 16, 16), np.float32)
        x[0, 0:4, 0:4] = 0.9          # a sure face in cell (0, 0)
        x[0, 8:12, 8:12] = 0.6        # a weak one in cell (2, 2): lost when the heatmap shrinks by 0.8
        if i == 2:
            x[0] = 0.0                # no face at all: F1 is undefined there
        np.save(data / f"s{i}.npy", x)
    model = SimpleNamespace(id="tiny-face", task="face-detection", path=tmp_path / "model.yaml", dataset=None,
                            preprocessing={"adapter": "arrays", "params": {"metrics": {"decoder": "centerface"}}},
                            custom_ops=None, labels=None, label_map=None, samples=None, threshold=None)
    ref = _tiny_centerface(tmp_path / "float.onnx", 1.0)
    c = compare_models(ref, _tiny_centerface(tmp_path / "weak.onnx", 0.8), data, model=model, cache=tmp_path / "cache")
    m = c.metrics["heat"]
    assert m["detection_f1"]["mean"] == pytest.approx(2 / 3) and m["detection_f1"]["n"] == 2
    assert m["detection_f1"]["excluded"] == 1
    assert m["detection_recall"]["mean"] == 0.5 and m["detection_precision"]["mean"] == 1.0
    assert m["landmark_error"]["mean"] == 0.0
    assert "snr_db" in m and "detection_f1" not in c.metrics["scale"]
    same = compare_models(ref, ref, data, model=model, cache=tmp_path / "cache")
    assert same.metrics["heat"]["detection_f1"]["mean"] == 1.0


# --- the real catalog models (slow: they come through pip, npm and apt the first time) ----------

def _photo(catalog_dataset, name: str):
    from PIL import Image

    return Image.open(catalog_dataset("face-photos") / name).convert("RGB")


@pytest.mark.slow
def test_the_real_centerface_made_flexible_finds_the_astronaut_s_face_with_its_landmarks(catalog_model, catalog_dataset,
                                                                                       registry, tmp_path):
    import onnxruntime as ort

    from quantzoo.shapes import make_flexible

    model = registry.model("centerface")
    flexible, _ = make_flexible(catalog_model("centerface"), list(model.shapes))
    onnx.save(flexible, tmp_path / "flexible.onnx")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(tmp_path / "flexible.onnx"), so, providers=["CPUExecutionProvider"])
    x = np.asarray(_photo(catalog_dataset, "astronaut.png").resize((512, 512)), np.float32).transpose(2, 0, 1)[None]
    outs = sess.run(None, {"input.1": x})
    d = DEC.decode_centerface([o[0] for o in outs], model.preprocessing["params"]["metrics"])
    assert len(d["boxes"]) == 1
    x1, y1, x2, y2 = d["boxes"][0]
    # Eileen Collins' face: upper middle of the portrait; her eyes above her mouth, inside the box
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 200 and 40 < x2 - x1 < 200
    eyes, mouth = d["points"][0, :2], d["points"][0, 3:]
    assert eyes[:, 1].max() < mouth[:, 1].min()
    assert ((d["points"][0] >= [x1, y1]) & (d["points"][0] <= [x2, y2])).all()


@pytest.mark.slow
def test_the_real_blazeface_finds_one_face_in_grace_hopper_s_portrait(catalog_model, catalog_dataset, registry):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(catalog_model("blazeface-front")), so, providers=["CPUExecutionProvider"])
    photo = _photo(catalog_dataset, "grace_hopper.jpg")
    side = min(photo.size)
    square = photo.crop((0, 0, side, side)).resize((128, 128))
    x = (np.asarray(square, np.float32) / 255 - 0.5) / 0.5
    outs = sess.run(None, {"input:0": x[None]})
    d = DEC.decode_blazeface([o[0] for o in outs], registry.model("blazeface-front").preprocessing["params"]["metrics"])
    assert len(d["boxes"]) == 1 and d["scores"][0] > 0.75
    x1, y1, x2, y2 = d["boxes"][0]
    assert 30 < (x1 + x2) / 2 < 100 and 20 < (y1 + y2) / 2 < 90
