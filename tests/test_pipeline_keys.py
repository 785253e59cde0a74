"""pipeline.keys: each stage's cache key changes with what decides its bytes, and only with that."""

from __future__ import annotations

from quantzoo.pipeline import keys as K
from tinyzoo import make_zoo


def test_artifact_key_changes_with_source_spec_and_version_only():
    spec = {"mode": "kmeans_lut", "nbits": 4, "granularity": "per_tensor"}
    k = K.artifact_key("a" * 64, spec, "1.0")
    assert k == K.artifact_key("a" * 64, dict(reversed(list(spec.items()))), "1.0")
    assert k != K.artifact_key("b" * 64, spec, "1.0")
    assert k != K.artifact_key("a" * 64, {**spec, "nbits": 3}, "1.0")
    assert k != K.artifact_key("a" * 64, spec, "1.1")


def test_comparison_key_changes_with_the_evaluation_data(tmp_path):
    from quantzoo.registry import load_registry

    reg = load_registry(make_zoo(tmp_path / "zoo"))
    m = reg.model("tiny-classifier")
    ident = K.evaluation_identity(m, reg.dataset("vectors"))
    other = K.evaluation_identity(m, reg.dataset("volumes"))
    assert K.comparison_key("c" * 64, "f" * 64, ident) == K.comparison_key("c" * 64, "f" * 64, ident)
    assert K.comparison_key("c" * 64, "f" * 64, ident) != K.comparison_key("c" * 64, "f" * 64, other)
    assert K.comparison_key("c" * 64, "f" * 64, ident) != K.comparison_key("d" * 64, "f" * 64, ident)


def test_preview_key_depends_on_the_samples_shown_and_a_tuple_equals_a_list():
    assert K.preview_key("a" * 64, "f" * 64, {}, samples=["x"]) == K.preview_key("a" * 64, "f" * 64, {}, samples=("x",))
    assert K.preview_key("a" * 64, "f" * 64, {}, samples=["x"]) != K.preview_key("a" * 64, "f" * 64, {})
    assert K.preview_key("a" * 64, "f" * 64, {}, samples=None) == K.preview_key("a" * 64, "f" * 64, {}, samples=[])


def test_graph_info_key_changes_with_the_float_bytes_and_the_version():
    assert K.graph_info_key("a" * 64, "1.0") != K.graph_info_key("b" * 64, "1.0")
    assert K.graph_info_key("a" * 64, "1.0") != K.graph_info_key("a" * 64, "1.1")


def test_a_runtime_matrix_is_keyed_by_both_files_the_data_and_the_runtime_versions():
    compat_key = K.compat_key
    base = compat_key("a" * 64, "f" * 64, {"task": "dense"}, {"openvino": {"version": "1"}})
    assert base == compat_key("a" * 64, "f" * 64, {"task": "dense"}, {"openvino": {"version": "1"}})
    for other in (compat_key("b" * 64, "f" * 64, {"task": "dense"}, {"openvino": {"version": "1"}}),
                  compat_key("a" * 64, "e" * 64, {"task": "dense"}, {"openvino": {"version": "1"}}),
                  compat_key("a" * 64, "f" * 64, {"task": "map"}, {"openvino": {"version": "1"}}),
                  compat_key("a" * 64, "f" * 64, {"task": "dense"}, {"openvino": {"version": "2"}}),
                  compat_key("a" * 64, "f" * 64, {"task": "dense"}, {})):
        assert other != base
