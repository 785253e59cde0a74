"""Adding a quantization mode or a metric is one record in one file (ARCHITECTURE.md, "One record
per concept"): a toy mode and a toy metric registered in-process flow through `check`, `build`
and the published index.json with no other edit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyzoo import dataset, model


@pytest.fixture
def toy_records(monkeypatch):
    from quantzoo.compare import metrics as M
    from quantzoo.quantize import modes

    def halved_linear(w, nbits, layout):  # any encode function will do: here linear at half the bits
        return modes.linear(w, max(1, nbits // 2), layout)

    toy_mode = modes.Mode("toy_half", "toyhalf", "linear at half the bits", halved_linear,
                          modes.LINEAR_GRANULARITIES, "per_channel", (2, 8), colour="#111111")
    monkeypatch.setitem(modes.MODES, toy_mode.name, toy_mode)

    def mean_abs_difference(ref, test, ctx):
        return [float(np.mean(np.abs(r - t))) for r, t in zip(ref, test)]

    toy_metric = M.Metric("toy_mad", "mean abs difference", "abs", False, False,
                          "mean absolute difference of the outputs", kinds=("classification", "dense"),
                          compute=mean_abs_difference)
    monkeypatch.setitem(M.METRICS, toy_metric.name, toy_metric)
    return toy_mode, toy_metric


def test_a_toy_mode_and_metric_flow_through_check_build_and_index(tmp_path, toy_records, capsys):
    from quantzoo.cli import main

    zoo = tmp_path / "zoo"
    (zoo / "datasets").mkdir(parents=True)
    dataset(zoo, "vectors", (64,), 12, seed=1)
    model(zoo, "tiny-classifier", "classifier", variants=["toyhalf-8", "linear-4"])
    manifest = (zoo / "models" / "tiny-classifier" / "model.yaml")
    text = manifest.read_text()
    assert "metric: top1_agreement\n  min: 0.8" in text
    manifest.write_text(text.replace("metric: top1_agreement\n  min: 0.8", "metric: toy_mad\n  max: 2.0"))

    assert main(["check", "--zoo", str(zoo)]) == 0
    assert "1 models (2 variants)" in capsys.readouterr().out

    site = tmp_path / "site"
    assert main(["build", "--zoo", str(zoo), "--cache", str(tmp_path / "cache"), "--site-dir", str(site),
                 "--jobs", "1"]) == 0
    index = json.loads((site / "index.json").read_text())
    [entry] = index["models"]
    variants = {v["id"]: v for v in entry["variants"]}
    assert variants["toyhalf-8"]["mode"] == "toy_half" and variants["toyhalf-8"]["nbits"] == 8
    mad = variants["toyhalf-8"]["metrics"]["logits"]["toy_mad"]
    assert mad["n"] == 12 and 0 < mad["mean"] < 1.0
    # linear-4 stores 4-bit codes; toyhalf-8 stores 4-bit codes too, through the toy encode function
    assert abs(variants["toyhalf-8"]["size"] - variants["linear-4"]["size"]) < 200
    assert entry["recommended"] in variants
    page = (site / "models" / "tiny-classifier.html").read_text()
    assert "mean abs difference" in page and "toyhalf-8" in page


def test_without_the_records_the_same_manifest_is_refused(tmp_path):
    from quantzoo.errors import ManifestError
    from quantzoo.registry import load_registry

    zoo = tmp_path / "zoo"
    (zoo / "datasets").mkdir(parents=True)
    dataset(zoo, "vectors", (64,), 4, seed=1)
    model(zoo, "tiny-classifier", "classifier", variants=["toyhalf-8"])
    with pytest.raises(ManifestError, match="unknown variant id 'toyhalf-8'"):
        load_registry(zoo)
