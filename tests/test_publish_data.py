"""publish.data: the recommended variant, safe links, metric formatting."""

from __future__ import annotations

import pytest

from publishzoo import synthetic, with_metric
from quantzoo.publish import data as D
from quantzoo.publish import index_document, recommend
from quantzoo.units import human_size


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("synth"))


def test_recommended_is_the_smallest_variant_meeting_a_min_threshold(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")  # top1_agreement >= 0.99
    ids = [v.variant.id for v in bm.variants]
    bm = with_metric(bm, {i: 0.5 for i in ids} | {"fp16": 1.0, "linear-8": 0.995, "kmeans-4": 0.991,
                                                   "kmeans-2": 0.98})
    assert recommend(bm).variant.id == "kmeans-4"
    assert index_document([bm])["models"][0]["recommended"] == "kmeans-4"


def test_recommended_respects_a_max_threshold_for_lower_is_better_metrics(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "text-recognition")  # cer <= 0.01
    ids = [v.variant.id for v in bm.variants]
    bm = with_metric(bm, {i: 0.5 for i in ids} | {"linear-6": 0.004, "kmeans-3": 0.0101})
    assert recommend(bm).variant.id == "linear-6"


def test_only_http_links_survive_from_manifests():
    assert D.safe_href("javascript:alert(1)") is None
    assert D.safe_href("data:text/html,<script>") is None
    assert D.safe_href('https://x.org/" onmouseover="x') is None
    assert D.safe_href("https://pypi.org/project/magika/1.0.3/") == "https://pypi.org/project/magika/1.0.3/"


def test_sizes_are_formatted_for_people():
    assert human_size(4_745_517) == "4.75 MB" and human_size(1_173_000_000) == "1.17 GB"


def test_the_source_url_is_the_upstream_download_page():
    from types import SimpleNamespace as M

    assert D.source_url(M(source={"kind": "pypi", "package": "magika", "version": "1.0.3"})) == \
        "https://pypi.org/project/magika/1.0.3/"
    assert D.source_url(M(source={"kind": "url", "url": "https://x.org/m.onnx", "sha256": "0" * 64})) == \
        "https://x.org/m.onnx"
    assert D.source_url(M(source={"kind": "file", "path": "m.onnx"})) is None


def test_a_variant_whose_mean_passes_but_whose_interval_reaches_below_is_not_recommended(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")  # top1_agreement >= 0.99
    ids = [v.variant.id for v in bm.variants]
    values = {i: 0.5 for i in ids} | {"fp16": 1.0, "linear-8": 0.995, "kmeans-4": 0.995}
    # kmeans-4 is smaller, but its interval reaches down to 0.97: linear-8, whose interval stays above, wins
    bm = with_metric(bm, values, {"fp16": [0.996, 1.0], "linear-8": [0.991, 0.999], "kmeans-4": [0.97, 0.999]})
    assert recommend(bm).variant.id == "linear-8"
    # without intervals (a comparison from before them) the mean decides, as before
    assert recommend(with_metric(bm, values)).variant.id == "kmeans-4"


def test_a_max_threshold_is_met_by_the_upper_end_of_the_interval():
    thr = {"output": "t", "metric": "cer", "max": 0.01}
    assert D.meets(thr, 0.005, (0.002, 0.009)) and not D.meets(thr, 0.005, (0.002, 0.02))
