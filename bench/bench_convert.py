"""PyTorch -> ONNX conversion of EfficientNet-Lite0, and how the float model does on its photos.

1. `convert_source` of the catalog's efficientnet-lite0 into a fresh cache (weights and the
   architecture's code are linked from the user cache, so this times the conversion, not pip):
   wall time, ONNX size, max |onnxruntime − PyTorch| on the converter's check inputs, and
   whether a second conversion in another fresh cache gives the same bytes.
2. The float model on imagenet-photos: top-1 accuracy over the labelled views, per photograph,
   and the top label of each named photograph.

    python bench/bench_convert.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _fresh_cache(tmp: Path, user):
    from quantzoo.cache import Cache

    cache = Cache(tmp)
    cache.root.mkdir(parents=True, exist_ok=True)
    for sub in ("blobs", "trees", "downloads"):
        (user.root / sub).mkdir(parents=True, exist_ok=True)
        (cache.root / sub).symlink_to(user.root / sub)
    return cache


def conversion(model) -> dict:
    from quantzoo.cache import Cache, sha256_file
    from quantzoo.fetch.convert import conversion_report
    from quantzoo.fetch.kinds import convert_source
    from quantzoo.fetch import fetch_source

    user = Cache()
    fetch_source(model.source["weights"], user)  # make sure the inputs are local before timing
    fetch_source(model.source["architecture"]["source"], user)
    runs = []
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="qz-bench-convert-") as tmp:
            cache = _fresh_cache(Path(tmp) / "cache", user)
            t0 = time.perf_counter()
            path = convert_source(model.source, cache)
            took = time.perf_counter() - t0
            report = conversion_report(model.source, cache)
            runs.append({"seconds": round(took, 3), "sha256": sha256_file(path), "size": path.stat().st_size,
                         "max_abs_diff": report["check"]["max_abs_diff"], "parameters": report["parameters"]})
            shutil.rmtree(tmp, ignore_errors=True)
    return {"runs": runs, "same_bytes": runs[0]["sha256"] == runs[1]["sha256"],
            "opset": model.source.get("opset"), "exporter": "torch.onnx TorchScript (dynamo=False)"}


def float_on_photos(model, reg) -> dict:
    import numpy as np

    from quantzoo.cache import Cache
    from quantzoo.compare import prepare
    from quantzoo.compare.named import named_predictions
    from quantzoo.fetch import fetch_source

    cache = Cache()
    path = fetch_source(model.source, cache)
    ev = prepare(path, None, model=model, registry=reg, cache=False)
    logits = np.concatenate(ev.reference[ev.output_names.index("logits")])
    labels = ev.contexts[ev.output_names.index("logits")]["all_labels"]
    per_photo: dict[str, list[int]] = {}
    for s, y, row in zip(ev.data.samples, labels, logits):
        if y is not None:
            per_photo.setdefault(s.key.split("#")[0], []).append(int(np.argmax(row) == y))
    named = named_predictions(model, path, {}, reg, cache)
    return {"samples": ev.n, "labelled": sum(len(v) for v in per_photo.values()),
            "accuracy": round(float(np.mean([x for v in per_photo.values() for x in v])), 4),
            "accuracy_per_photo": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_photo.items())},
            "named_top1": named["models"]["float"] if named else None}


def main() -> int:
    from quantzoo.registry import load_registry

    reg = load_registry(REPO / "zoo")
    model = reg.model("efficientnet-lite0")
    payload = {"conversion": conversion(model), "float_on_photos": float_on_photos(model, reg)}
    for r in payload["conversion"]["runs"]:
        print(f"converted in {r['seconds']:.1f} s: {r['size']:,} bytes, max abs diff {r['max_abs_diff']}")
    print(f"same bytes twice: {payload['conversion']['same_bytes']}; float accuracy on labelled photo views: "
          f"{payload['float_on_photos']['accuracy']:.2%} ({payload['float_on_photos']['accuracy_per_photo']})")
    write_result("convert", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
