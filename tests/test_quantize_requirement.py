"""requirement: what a choice must show on the calibration split (the published, conservative
rule on the evaluation split's independent items), and when a check can stop."""

from __future__ import annotations

from types import SimpleNamespace

from quantzoo.quantize.requirement import give_up, independent_n, requirement


def test_the_requirement_follows_the_conservative_rule_on_the_evaluation_size():
    ok, what = requirement({"output": "y", "metric": "top1_agreement", "min": 0.98}, 200)
    assert what["calibration_mean_at_least"] == 1.0 and ok([1.0] * 50) and not ok([1.0] * 49 + [0.0])
    ok, what = requirement({"output": "y", "metric": "top1_agreement", "min": 0.95}, 1000)
    assert 0.95 < what["calibration_mean_at_least"] < 0.97
    ok, what = requirement({"output": "y", "metric": "snr_db", "min": 30}, None)
    assert ok([(100.0, 0.01, 1, 1)] * 5) and not ok([(100.0, 1.0, 1, 1)] * 5)


def test_the_requirement_counts_the_evaluation_splits_photos_not_its_views():
    # 203 windows from 104 independent items (crepe-tiny's evaluation split): the published
    # Wilson interval has n = 104, where 0.95 is met only when every item agrees
    ev = SimpleNamespace(n=203, clusters=[f"c{i % 104}" for i in range(203)])
    assert independent_n(ev) == 104 and independent_n(SimpleNamespace(n=203, clusters=None)) == 203
    thr = {"output": "y", "metric": "top1_agreement", "min": 0.95}
    assert requirement(thr, independent_n(ev))[1]["calibration_mean_at_least"] == 1.0
    assert requirement(thr, ev.n)[1]["calibration_mean_at_least"] < 0.99
    # a mean metric's calibration interval resamples whole clusters: wider, so stricter
    ok_views, _ = requirement({"output": "y", "metric": "cosine", "min": 0.89}, None)
    ok_photos, _ = requirement({"output": "y", "metric": "cosine", "min": 0.89}, None, clusters=["a"] * 10 + ["b"] * 10)
    values = [1.0] * 10 + [0.85] * 10
    assert ok_views(values) and not ok_photos(values)


def test_a_check_gives_up_exactly_when_no_remaining_values_can_make_it_pass():
    ok, what = requirement({"output": "y", "metric": "top1_agreement", "min": 0.95}, 1000)  # mean >= 0.964
    stop = give_up(what)
    # 100 calibration values allow 3 misses: after 4, no rest passes; after 3, an all-agreeing rest does
    assert stop([0.0] * 4, 96) and not ok([0.0] * 4 + [1.0] * 96)
    assert not stop([0.0] * 3, 97) and ok([0.0] * 3 + [1.0] * 97)
    assert give_up({"metric": "snr_db", "calibration_ci95_lower_at_least": 30}) is None
    # values that are rows of a pooled figure, not numbers: never an early decision
    assert not stop([(0, 1)] * 10, 90)
