"""The pytorch source kind: a state dict + its architecture code, converted to ONNX and checked.

Most tests build a tiny network in the test: its code is written to a file that reaches the
converter the way a real architecture does (a fetched, sha256-verified folder), and its weights
are a real `torch.save` of a state dict.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from quantzoo.cache import Cache, sha256_file, tree_sha256  # noqa: E402
from quantzoo.errors import QuantzooError  # noqa: E402
from quantzoo.fetch import action, fetch_source  # noqa: E402
from quantzoo.fetch.convert import ConversionError, conversion_key, conversion_report, converted_path  # noqa: E402
from quantzoo.fetch.torchload import state_dict_mismatch  # noqa: E402
from quantzoo.fetch.kinds import convert_source  # noqa: E402

TINYNET = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self, width=4, classes=3):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.bn = nn.BatchNorm2d(width)
            self.fc = nn.Linear(width, classes)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            return self.fc(x.mean(dim=(2, 3)))


    def build(width=4, classes=3):
        return TinyNet(width, classes)
''')


def _file_source(path: Path) -> dict:
    return {"kind": "file", "path": str(path), "sha256": sha256_file(path), "size": path.stat().st_size}


def _arch_source(code: Path, as_name: str) -> dict:
    """The architecture code as a fetched folder: a bundle holding the file as `as_name`."""
    return {"kind": "bundle", "parts": [{"name": as_name, "source": _file_source(code)}],
            "sha256": tree_sha256([(as_name, sha256_file(code), code.stat().st_size)])}


def _tiny_weights(tmp_path: Path, name: str, width: int = 4, extra: bool = False, drop: str | None = None) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("tinynet_for_weights", tmp_path / "tinynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(1)
    net = mod.build(width=width)
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    state = net.state_dict()
    if extra:
        state["head.weight"] = torch.zeros(2, 2)
    if drop:
        del state[drop]
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.fixture
def tiny(tmp_path):
    """A pytorch source for TinyNet: (source, cache)."""
    code = tmp_path / "tinynet.py"
    code.write_text(TINYNET)
    weights = _tiny_weights(tmp_path, "tiny.pth")
    source = {
        "kind": "pytorch",
        "weights": _file_source(weights),
        "architecture": {"source": _arch_source(code, "tinynet/__init__.py"), "builder": "tinynet:build",
                         "kwargs": {"width": 4}},
        "input_shape": [1, 3, 8, 8],
        "opset": 13,
        "input_names": ["image"],
        "output_names": ["scores"],
    }
    return source, Cache(tmp_path / "cache")


def _torch_reference(tmp_path: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    import importlib.util

    spec = importlib.util.spec_from_file_location("tinynet_reference", tmp_path / "tinynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build(width=4)
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_a_tiny_network_converts_to_onnx_that_reproduces_pytorch(tiny, tmp_path):
    import onnx
    import onnxruntime as ort

    source, cache = tiny
    path = fetch_source(source, cache)
    assert path == converted_path(source, cache) and path.suffix == ".onnx"
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["scores"]
    x = np.random.default_rng(3).standard_normal((5, 3, 8, 8)).astype(np.float32)  # batch 5: axis 0 is dynamic
    got = ort.InferenceSession(str(path)).run(["scores"], {"image": x})[0]
    ref = _torch_reference(tmp_path, Path(source["weights"]["path"]), x)
    assert got.shape == (5, 3)
    assert np.max(np.abs(got - ref)) < 1e-5


def test_the_measured_difference_is_recorded_in_the_model_and_a_sidecar(tiny):
    import onnx

    source, cache = tiny
    path = convert_source(source, cache)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    diff = json.loads(props["quantzoo.max_abs_diff"])
    assert set(diff) == {"scores"} and 0 <= diff["scores"] < 1e-5
    assert props["quantzoo.converted_from"] == f"pytorch state dict sha256:{source['weights']['sha256']}"
    report = conversion_report(source, cache)
    assert report["check"]["max_abs_diff"] == diff
    assert report["onnx"] == {"sha256": sha256_file(path), "size": path.stat().st_size}
    assert report["parameters"] == 4 * 3 * 9 + 4 + 4 + 4 + 3 * 4 + 3 + 4 + 4  # conv, bn (4 tensors), fc
    from importlib.metadata import version

    assert report["versions"]["torch"] == version("torch") and report["opset"] == 13


def test_a_second_fetch_is_a_cache_hit_that_converts_nothing(tiny):
    source, cache = tiny
    assert action(source, cache) == "fetch"
    first = fetch_source(source, cache)
    stamp = first.stat().st_mtime_ns
    assert action(source, cache) == "hit"
    assert fetch_source(source, cache) == first
    assert first.stat().st_mtime_ns == stamp


def test_the_same_source_converts_to_the_same_bytes_in_another_cache(tiny, tmp_path):
    source, cache = tiny
    a = convert_source(source, cache)
    b = convert_source(source, Cache(tmp_path / "other-cache"))
    assert sha256_file(a) == sha256_file(b)


def test_an_architecture_folder_that_is_the_package_itself_imports(tiny, tmp_path):
    source, _ = tiny
    source = {**source, "architecture": {**source["architecture"],
                                         "source": _arch_source(tmp_path / "tinynet.py", "__init__.py")}}
    path = convert_source(source, Cache(tmp_path / "cache-pkg"))
    assert conversion_report(source, Cache(tmp_path / "cache-pkg"))["check"]["max_abs_diff"]["scores"] < 1e-5
    assert path.is_file()


def test_weights_that_do_not_match_the_architecture_are_one_clear_error(tiny, tmp_path):
    source, cache = tiny
    wrong = _tiny_weights(tmp_path, "wide.pth", width=8, extra=True, drop="fc.bias")
    source = {**source, "weights": _file_source(wrong)}
    with pytest.raises(ConversionError) as e:
        fetch_source(source, cache)
    msg = str(e.value)
    assert "do not match the architecture tinynet:build(width=4)" in msg
    assert "1 missing from the weights (fc.bias)" in msg
    assert "1 not in the architecture (head.weight)" in msg
    assert "7 with a different shape (bn.bias: architecture [4] vs weights [8]" in msg
    assert "Check architecture.builder, args and kwargs" in msg
    assert not list(cache.root.rglob("*.onnx"))  # nothing half-done was left in the cache


def test_a_pickled_module_instead_of_a_state_dict_is_refused_without_running_it(tiny, tmp_path):
    source, cache = tiny
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module, not a state dict
    source = {**source, "weights": _file_source(pickled)}
    with pytest.raises(ConversionError, match=r"weights_only=True.*tensors only, never pickled code"):
        convert_source(source, cache)
    assert not converted_path(source, cache).exists()


def test_a_builder_that_does_not_exist_names_the_module_and_attribute(tiny):
    source, cache = tiny
    source = {**source, "architecture": {**source["architecture"], "builder": "tinynet:make_net"}}
    with pytest.raises(QuantzooError, match=r"'tinynet:make_net': tinynet has no attribute 'make_net'"):
        convert_source(source, cache)


def test_state_dict_mismatch_lists_missing_unexpected_and_reshaped_keys():
    m = state_dict_mismatch({"a": (2,), "b": (3, 3), "c": (1,)}, {"a": (2,), "b": (3, 4), "d": (5,)})
    assert m == {"missing": ["c"], "unexpected": ["d"], "shape": [("b", (3, 3), (3, 4))]}
    assert state_dict_mismatch({"a": (2,)}, {"a": (2,)}) == {"missing": [], "unexpected": [], "shape": []}


def test_the_cache_key_follows_weights_architecture_opset_and_versions(tiny):
    source, _ = tiny
    v = {"torch": "2.13.0", "onnx": "1.23.2", "quantzoo": "0.1.0", "converter": 1}
    base = conversion_key(source, v)
    assert conversion_key(dict(source), dict(v)) == base
    assert conversion_key({**source, "weights": {**source["weights"], "sha256": "f" * 64}}, v) != base
    assert conversion_key({**source, "architecture": {**source["architecture"], "kwargs": {"width": 8}}}, v) != base
    assert conversion_key({**source, "opset": 17}, v) != base
    assert conversion_key(source, {**v, "onnx": "1.24.0"}) != base


@pytest.mark.slow
def test_efficientnet_lite0_converts_and_names_the_coffee_photo_espresso(registry, catalog_model, catalog_dataset):
    import onnxruntime as ort
    from PIL import Image

    from quantzoo.compare.inputs import InputSpec
    from quantzoo.compare.preprocess import image

    m = registry.model("efficientnet-lite0")
    path = catalog_model("efficientnet-lite0")
    report = conversion_report(m.source)
    assert report["parameters"] == 4_694_024  # every tensor of the state dict but BatchNorm's step counters
    assert report["check"]["max_abs_diff"]["logits"] < 1e-4
    photos = catalog_dataset("imagenet-photos")
    sess = ort.InferenceSession(str(path))
    spec = InputSpec("input", "tensor(float)", (None, 3, 224, 224))
    x = image(Image.open(photos / "coffee.png"), m.preprocessing["params"], [spec])["input"]
    logits = sess.run(["logits"], {"input": x[None]})[0][0]
    labels = json.loads(fetch_source(m.labels["file"]).read_text())
    assert len(labels) == 1000
    assert labels[int(np.argmax(logits))] == "espresso"


# --- custom layers -----------------------------------------------------------------------------------

WARPNET = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Warp(nn.Module):
        def __init__(self, h=6, w=5):
            super().__init__()
            self.h, self.w = h, w

        def forward(self, x, theta):
            grid = F.affine_grid(theta, [x.shape[0], x.shape[1], self.h, self.w], align_corners=False)
            return F.grid_sample(x, grid, align_corners=False)


    class WarpNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = nn.Linear(16, 6)
            self.warp = Warp()
            self.fc = nn.Linear(30, 3)

        def forward(self, x):
            return self.fc(self.warp(x, self.loc(x.flatten(1)).view(-1, 2, 3)).flatten(1))


    def build():
        return WarpNet()


    def convert_warp(module):
        return {"op_type": "Warp", "domain": "ai.test.convert", "attributes": {"h": module.h, "w": module.w},
                "description": "affine warp, bilinear"}
''')

WARP_IMPL = textwrap.dedent('''
    import numpy as np


    class Warp:
        def __init__(self, h, w):
            self.h, self.w = h, w

        def output_shapes(self, x, theta):
            return [(x[0], x[1], self.h, self.w)]

        def evaluate(self, image, theta):
            n, c, h, w = image.shape
            ys = (2 * np.arange(self.h) + 1) / self.h - 1
            xs = (2 * np.arange(self.w) + 1) / self.w - 1
            gy, gx = np.meshgrid(ys, xs, indexing="ij")
            base = np.stack([gx, gy, np.ones_like(gx)], -1).reshape(-1, 3)
            grid = np.einsum("pk,njk->npj", base, theta.astype(np.float64))
            ix, iy = ((grid[..., 0] + 1) * w - 1) / 2, ((grid[..., 1] + 1) * h - 1) / 2
            x0, y0 = np.floor(ix).astype(int), np.floor(iy).astype(int)
            out = np.zeros((n, c, self.h * self.w))
            for dy in (0, 1):
                for dx in (0, 1):
                    xi, yi = x0 + dx, y0 + dy
                    wt = (1 - np.abs(ix - xi)) * (1 - np.abs(iy - yi)) * ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))
                    flat = np.clip(yi, 0, h - 1) * w + np.clip(xi, 0, w - 1)
                    v = np.take_along_axis(image.reshape(n, c, h * w), flat[:, None, :].repeat(c, 1), axis=2)
                    out += v * wt[:, None, :]
            return out.reshape(n, c, self.h, self.w).astype(np.float32)
''')


@pytest.fixture
def warp(tmp_path):
    """A pytorch source for WarpNet, whose Warp module torch.onnx cannot export at opset 17:
    (source, cache, custom_ops as the model manifest gives them)."""
    code = tmp_path / "warpnet.py"
    code.write_text(WARPNET)
    impl = tmp_path / "warp_impl.py"
    impl.write_text(WARP_IMPL)
    import importlib.util

    spec = importlib.util.spec_from_file_location("warpnet_for_weights", code)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(2)
    torch.save(mod.build().state_dict(), tmp_path / "warp.pth")
    source = {"kind": "pytorch", "weights": _file_source(tmp_path / "warp.pth"),
              "architecture": {"source": _arch_source(code, "warpnet.py"), "builder": "warpnet:build"},
              "input_shape": [1, 1, 4, 4], "opset": 17,
              "custom_layers": {"warpnet:Warp": "warpnet:convert_warp"}}
    ops = {"ai.test.convert.Warp": {"class": "warp_impl:Warp", "source": _file_source(impl)}}
    return source, Cache(tmp_path / "cache"), ops


def test_a_custom_layer_exports_as_one_node_with_its_attributes_and_is_checked_with_its_implementation(warp):
    import onnx

    source, cache, ops = warp
    path = fetch_source({**source, "custom_ops": ops}, cache)
    model = onnx.load(str(path))
    [node] = [n for n in model.graph.node if n.domain == "ai.test.convert"]
    assert node.op_type == "Warp" and node.doc_string == "affine warp, bilinear"
    assert {a.name: a.i for a in node.attribute} == {"h": 6, "w": 5}  # the instance marker is gone
    assert {o.domain: o.version for o in model.opset_import}["ai.test.convert"] == 1
    report = conversion_report(source, cache)
    assert report["check"]["max_abs_diff"]["output"] < 1e-5  # torch vs onnxruntime running the numpy class
    assert report["custom_layers"] == [{"module": "warp", "class": "warpnet:Warp", "op_type": "Warp",
                                        "domain": "ai.test.convert", "attributes": {"h": 6, "w": 5},
                                        "description": "affine warp, bilinear"}]
    assert conversion_key(source) != conversion_key({k: v for k, v in source.items() if k != "custom_layers"})


def test_an_unsupported_module_without_a_conversion_function_is_named_with_how_to_add_one(warp):
    source, cache, ops = warp
    plain = {k: v for k, v in source.items() if k != "custom_layers"}
    with pytest.raises(ConversionError) as e:
        fetch_source(plain, cache)
    msg = str(e.value)
    assert "aten::affine_grid_generator" in msg and "module 'warp' (class warpnet:Warp)" in msg
    assert 'custom_layers: {"warpnet:Warp": "module:function"}' in msg


def test_a_custom_layer_without_an_implementation_is_a_clear_error(warp):
    source, cache, _ = warp
    with pytest.raises(QuantzooError, match=r"custom op ai\.test\.convert\.Warp with no implementation"):
        fetch_source(source, cache)
    assert not converted_path(source, cache).exists()


def test_a_conversion_function_returning_a_bad_spec_is_named(warp, tmp_path):
    source, cache, ops = warp
    code = tmp_path / "badconv.py"
    code.write_text(WARPNET.replace('"domain": "ai.test.convert"', '"domain": ""'))
    bad = {**source, "architecture": {"source": _arch_source(code, "badconv.py"), "builder": "badconv:build"},
           "custom_layers": {"badconv:Warp": "badconv:convert_warp"}}
    with pytest.raises(ConversionError, match=r"badconv:Warp \(module 'warp'\): 'domain' must be a custom domain"):
        fetch_source({**bad, "custom_ops": ops}, cache)


def test_exports_on_several_threads_at_once_all_succeed():
    # fetch converts pytorch sources on threads; torch.onnx.export keeps global state, so
    # without the export lock a second export fails ("GLOBALS.in_onnx_export must be False")
    from concurrent.futures import ThreadPoolExecutor

    from quantzoo.fetch.convert import export_onnx

    def one(width):
        net = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, 4, 3),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10)).eval()
        data, _ = export_onnx(net, [1, 3, 64, 64], 17, ["x"], ["y"])
        return len(data)

    with ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(one, [8, 16, 24, 32, 8, 16, 24, 32]))
    assert all(s > 1000 for s in sizes) and sizes[:4] == sizes[4:]
