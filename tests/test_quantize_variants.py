"""variants: the variant-id grammar, derived from the mode records, with its exact outputs and errors."""

from __future__ import annotations

import pytest

from quantzoo.quantize import MODES
from quantzoo.quantize.variants import DEFAULT_VARIANTS, MODE_DEFAULT_GRANULARITY, Variant, parse_variant

UNKNOWN = ("; expected fp16 or <mode>-<1..8> with mode one of linear, linear-sym, lut, kmeans, unique, custom"
           " (a table mode may add -g<G>: G channels per table), or auto / auto-<target>")


@pytest.mark.parametrize("vid,mode,nbits,granularity", [
    ("fp16", "fp16", None, "per_tensor"),
    ("linear-8", "linear", 8, "per_channel"),
    ("linear-sym-3", "linear_symmetric", 3, "per_channel"),
    ("lut-1", "linear_lut", 1, "per_tensor"),
    ("kmeans-4", "kmeans_lut", 4, "per_tensor"),
    ("unique-8", "unique_lut", 8, "per_tensor"),
])
def test_an_id_names_its_mode_bits_and_the_modes_default_granularity(vid, mode, nbits, granularity):
    assert parse_variant(vid) == Variant(vid, mode, nbits, granularity)


def test_every_prefix_and_width_of_every_mode_parses():
    for m in MODES.values():
        if m.prefix is None:
            assert parse_variant(m.name).mode == m.name
            continue
        for n in range(m.nbits[0], m.nbits[1] + 1):
            entry = {"id": f"{m.prefix}-{n}", "lut_function": "m:f"} if m.takes_lut_function else f"{m.prefix}-{n}"
            assert (parse_variant(entry).mode, parse_variant(entry).nbits) == (m.name, n)


def test_a_mapping_overrides_the_configuration():
    v = parse_variant({"id": "linear-4", "granularity": "per_block", "block_size": 32})
    assert v == Variant("linear-4", "linear", 4, "per_block", block_size=32)
    assert v.spec() == {"mode": "linear", "nbits": 4, "granularity": "per_block", "block_size": 32,
                        "group_size": None, "lut_function": None}
    assert parse_variant({"id": "custom-4", "lut_function": "m:f"}).lut_function == "m:f"


@pytest.mark.parametrize("vid", ["kmeans-0", "kmeans-9", "linear-08", "foo", "fp16-4", "linear_symmetric-4",
                                 "kmeans", "-4"])
def test_an_unknown_id_lists_the_grammar(vid):
    with pytest.raises(ValueError) as e:
        parse_variant(vid)
    assert str(e.value) == f"unknown variant id {vid!r}" + UNKNOWN


def test_bad_entries_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^a variant needs an id string, found 3$"):
        parse_variant(3)
    with pytest.raises(ValueError, match=r"^variant 'kmeans-2' has unknown keys \['bad'\]$"):
        parse_variant({"id": "kmeans-2", "bad": 1})
    with pytest.raises(ValueError, match=r"^variant 'custom-4' needs lut_function: 'module:function'$"):
        parse_variant("custom-4")


def test_the_default_variants_parse_and_the_default_granularities_follow_the_modes():
    assert [parse_variant(v).id for v in DEFAULT_VARIANTS] == list(DEFAULT_VARIANTS)
    assert dict(MODE_DEFAULT_GRANULARITY) == {n: m.default_granularity for n, m in MODES.items()}


def test_the_registry_uses_these_very_objects():
    from quantzoo import registry

    assert registry.parse_variant is parse_variant and registry.Variant is Variant
    assert registry.DEFAULT_VARIANTS is DEFAULT_VARIANTS


def test_representation_is_a_variant_key_in_the_spec_only_when_not_the_default():
    plain = parse_variant("linear-4")
    assert plain.representation == "auto" and "representation" not in plain.spec()
    assert plain.spec() == {"mode": "linear", "nbits": 4, "granularity": "per_channel", "block_size": None,
                            "group_size": None, "lut_function": None}  # the artifact keys of before
    native = parse_variant({"id": "linear-4", "representation": "native"})
    assert native.spec()["representation"] == "native"
    assert "representation" not in parse_variant({"id": "linear-8", "representation": "auto"}).spec()
    with pytest.raises(ValueError, match="representation must be one of auto, decode, native, found 'qdq'"):
        parse_variant({"id": "linear-4", "representation": "qdq"})


def test_a_grouped_table_id_names_its_group_size():
    v = parse_variant("kmeans-4-g8")
    assert (v.mode, v.nbits, v.granularity, v.group_size) == ("kmeans_lut", 4, "per_grouped_channel", 8)
    assert v.spec()["group_size"] == 8 and "target" not in v.spec()
    with pytest.raises(ValueError, match="table modes only"):
        parse_variant("linear-4-g8")


def test_auto_variants_carry_their_target_in_the_spec():
    assert parse_variant("auto").auto and parse_variant("auto").target is None
    assert parse_variant("auto-0.99").target == 0.99
    assert parse_variant("auto-0.99").spec()["target"] == 0.99
    assert parse_variant("auto").spec() != parse_variant("auto-0.99").spec()
    assert not parse_variant("kmeans-4").auto and "target" not in parse_variant("kmeans-4").spec()
    for bad in ("auto-2", "auto-x", "auto-"):
        with pytest.raises(ValueError, match="unknown variant id"):
            parse_variant(bad)
