"""client.select: choosing a variant of a catalog model (pure)."""

from __future__ import annotations

import pytest

from quantzoo.catalog import CatalogIndex, ModelEntry
from quantzoo.client import select as client
from quantzoo.errors import QuantzooError


def _v(vid, size, **metrics):
    """A variant entry; metrics as output__metric=mean."""
    out: dict = {}
    for key, mean in metrics.items():
        output, metric = key.split("__")
        out.setdefault(output, {})[metric] = {"mean": mean, "std": 0.0, "n": 10}
    return {"id": vid, "size": size, "file": f"files/m/m-{vid}.onnx", "sha256": "0" * 64, "metrics": out}


def _m(doc: dict) -> ModelEntry:
    return ModelEntry.from_json({"id": "m", **doc}, "models[0]")


MODEL = {"id": "m", "recommended": "linear-8", "float": {"file": "files/m/m-float.onnx", "size": 400, "sha256": "1" * 64},
         "variants": [_v("fp16", 200, y__top1_agreement=1.0, y__cosine=0.99999),
                      _v("linear-8", 100, y__top1_agreement=0.995, y__cosine=0.9999),
                      _v("kmeans-8", 100, y__top1_agreement=0.998, y__cosine=0.9999),
                      _v("linear-4", 50, y__top1_agreement=0.93, y__cosine=0.99),
                      _v("kmeans-2", 25, y__top1_agreement=0.40, y__cosine=0.9)]}


def test_without_a_choice_the_recommended_variant_is_taken():
    assert client.select_variant(_m(MODEL)).id == "linear-8"


def test_a_named_variant_is_taken_and_float_names_the_original():
    assert client.select_variant(_m(MODEL), variant="linear-4").id == "linear-4"
    f = client.select_variant(_m(MODEL), variant="float")
    assert (f.id, f.file, f.size) == ("float", "files/m/m-float.onnx", 400)


def test_an_unknown_variant_lists_the_variants_that_exist():
    with pytest.raises(QuantzooError) as e:
        client.select_variant(_m(MODEL), variant="linear-3")
    assert "model 'm' has no variant 'linear-3'" in str(e.value)
    assert "Its variants: fp16, linear-8, kmeans-8, linear-4, kmeans-2 (or 'float' for the original)" in str(e.value)


def test_max_size_takes_the_most_agreeing_variant_that_fits():
    assert client.select_variant(_m(MODEL), max_size=100).id == "kmeans-8"   # 0.998 beats linear-8's 0.995
    assert client.select_variant(_m(MODEL), max_size=99).id == "linear-4"
    assert client.select_variant(_m(MODEL), max_size=10_000).id == "fp16"


def test_max_size_breaks_an_agreement_tie_with_the_smaller_file():
    m = _m({"id": "t", "variants": [_v("big", 90, y__top1_agreement=1.0), _v("small", 60, y__top1_agreement=1.0)]})
    assert client.select_variant(m, max_size=100).id == "small"


def test_max_size_that_nothing_fits_names_the_smallest_variant():
    with pytest.raises(QuantzooError) as e:
        client.select_variant(_m(MODEL), max_size=24)
    msg = str(e.value)
    assert "no variant of 'm' is at most 24 bytes" in msg
    assert "the smallest is 'kmeans-2' at 25 bytes" in msg and "Raise --max-size to at least 25" in msg


def test_min_agreement_takes_the_smallest_variant_that_reaches_it():
    assert client.select_variant(_m(MODEL), min_agreement=0.9).id == "linear-4"
    assert client.select_variant(_m(MODEL), min_agreement=0.99).id == "kmeans-8"  # same size as linear-8, agrees more
    assert client.select_variant(_m(MODEL), min_agreement=0.999).id == "fp16"
    assert client.select_variant(_m(MODEL), min_agreement=0.0).id == "kmeans-2"


def test_min_agreement_that_nothing_reaches_names_the_best_available():
    m = _m({"id": "m", "variants": MODEL["variants"][1:]})
    with pytest.raises(QuantzooError) as e:
        client.select_variant(m, min_agreement=0.999)
    msg = str(e.value)
    assert "no variant of 'm' reaches top1_agreement of output 'y' >= 0.999" in msg
    assert "the best is 'kmeans-8' with 0.998" in msg


def test_the_primary_metric_is_the_first_of_top1_string_iou_cosine_that_is_reported():
    assert client.primary_metric(_m(MODEL)) == ("y", "top1_agreement")
    ocr = _m({"variants": [_v("a", 1, text__cer=0.01, text__string_agreement=0.9)]})
    assert client.primary_metric(ocr) == ("text", "string_agreement")
    det = _m({"variants": [_v("a", 1, prob__cosine=0.9, prob__iou=0.8)]})
    assert client.primary_metric(det) == ("prob", "iou")
    vad = _m({"variants": [_v("a", 1, stateN__cosine=0.9, output__cosine=0.7)]})
    assert client.primary_metric(vad) == ("output", "cosine")
    assert client.primary_metric(_m({"variants": [_v("a", 1, y__snr_db=30)]})) is None


def test_constraints_on_a_model_without_top1_rank_by_its_primary_metric():
    det = _m({"id": "det", "variants": [_v("a", 100, prob__iou=0.99, prob__cosine=0.5),
                                        _v("b", 50, prob__iou=0.95, prob__cosine=0.999)]})
    assert client.select_variant(det, min_agreement=0.96).id == "a"      # by iou, not by cosine
    assert client.select_variant(det, max_size=100).id == "a"


def test_constraints_on_a_model_without_any_primary_metric_ask_for_a_named_variant():
    m = _m({"id": "n", "variants": [_v("a", 10, y__snr_db=30.0)]})
    with pytest.raises(QuantzooError, match="reports none of the metrics .* Choose with --variant"):
        client.select_variant(m, max_size=100)


def test_variants_without_a_measured_primary_metric_are_never_chosen_by_a_constraint():
    m = _m({"id": "m", "variants": [_v("a", 10, y__top1_agreement=None), _v("b", 20, y__top1_agreement=0.5)]})
    assert client.select_variant(m, min_agreement=0.0).id == "b"
    assert client.select_variant(m, max_size=20).id == "b"


def test_a_model_without_a_recommended_variant_asks_for_a_choice():
    with pytest.raises(QuantzooError, match="no recommended variant .* Choose one with --variant"):
        client.select_variant(_m({**MODEL, "recommended": None}))


def test_an_unknown_model_lists_the_models_and_suggests_the_closest():
    doc = CatalogIndex((ModelEntry("magika-standard-v3"), ModelEntry("ppocr-v4-det")))
    with pytest.raises(QuantzooError) as e:
        client.find_model(doc, "magika", "http://x/index.json")
    assert str(e.value).startswith("no model 'magika' in http://x/index.json. Did you mean 'magika-standard-v3'? "
                                   "Models there: magika-standard-v3, ppocr-v4-det.")


def test_min_agreement_takes_the_lower_end_of_the_interval_when_the_index_has_one():
    def v(vid, size, mean, ci95):
        doc = _v(vid, size, y__top1_agreement=mean)
        doc["metrics"]["y"]["top1_agreement"]["ci95"] = ci95
        return doc

    m = _m({"variants": [v("big", 100, 0.999, [0.995, 1.0]), v("small", 50, 0.99, [0.96, 0.998]),
                         v("old", 40, 0.99, None)]})
    # "small" has a mean of 0.99 but could be 0.96: only "old" (no interval: its mean) and "big" qualify
    assert client.select_variant(m, min_agreement=0.99).id == "old"
    m = _m({"variants": [v("big", 100, 0.999, [0.995, 1.0]), v("small", 50, 0.99, [0.96, 0.998])]})
    assert client.select_variant(m, min_agreement=0.99).id == "big"
    with pytest.raises(QuantzooError, match=r"'big' with 0.995 \(lower end of its 95 % interval; mean 0.999\)"):
        client.select_variant(m, min_agreement=0.998)


def test_min_agreement_picks_an_auto_variant_when_it_is_the_smallest_that_qualifies():
    auto = {**_v("auto", 60, y__top1_agreement=0.996), "mode": "auto", "granularity": "mixed"}
    m = _m({**MODEL, "variants": MODEL["variants"] + [auto]})
    assert client.select_variant(m, min_agreement=0.99).id == "auto"
    assert client.select_variant(m, min_agreement=0.997).id == "kmeans-8"
    assert client.select_variant(m, max_size=70).id == "auto"
