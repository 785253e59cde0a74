"""client.cli: `quantzoo list`, `info` and `pull` against a small real site served on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from catalogsite import files, pull, top1, variant
from catalogsite import served, site  # noqa: F401  (module-scoped fixtures shared by the client tests)
from quantzoo.cli import main
from quantzoo.units import human_size


def test_the_site_variants_shrink_and_agree_less_as_bits_drop(site):
    # the constraint tests below lean on this ordering of the measured site
    sizes = [variant(site, v)["size"] for v in ("fp16", "linear-8", "linear-4")]
    assert sizes == sorted(sizes, reverse=True)
    assert top1(site, "fp16") >= top1(site, "linear-8") > top1(site, "linear-4")


def test_list_shows_every_model_with_its_recommended_variant(served, site, capsys):
    assert main(["list", "--catalog", served.url("/")]) == 0
    out = capsys.readouterr().out
    assert f"2 models in {served.url('/index.json')}" in out
    rows = [l for l in out.splitlines() if "tiny-" in l]
    assert len(rows) == 2
    assert "tiny-classifier" in rows[0] and "classification" in rows[0] and "linear-8" in rows[0]
    assert human_size(variant(site, "linear-8")["size"]) in rows[0]
    assert "tiny-embedder" in rows[1] and "embedding" in rows[1] and "fp16" in rows[1]


def test_list_filters_by_task_and_names_the_tasks_when_none_match(served, capsys):
    assert main(["list", "--catalog", served.url("/"), "--task", "embedding"]) == 0
    out = capsys.readouterr().out
    assert "tiny-embedder" in out and "tiny-classifier" not in out
    assert main(["list", "--catalog", served.url("/"), "--task", "ocr"]) == 1
    assert "has task 'ocr'; its tasks: classification, embedding." in capsys.readouterr().err


def test_info_shows_every_variant_with_size_and_metrics(served, site, capsys):
    assert main(["info", "tiny-classifier", "--catalog", served.url("/")]) == 0
    out = capsys.readouterr().out
    assert "ranked by:     top1_agreement (scores)" in out
    header = next(l for l in out.splitlines() if "variant" in l and "size" in l)
    assert header.index("top1_agreement") < header.index("cosine")
    for vid in ("fp16", "linear-8", "linear-4"):
        row = next(l for l in out.splitlines() if f" {vid} " in l or f" {vid}*" in l or f"{vid} *" in l)
        assert human_size(variant(site, vid)["size"]) in row
        assert f"{top1(site, vid) * 100:.2f} %" in row
    assert "linear-8 *" in out


def test_pull_by_name_lands_the_recommended_variant_in_dir_and_prints_its_path(served, site, tmp_path, capsys):
    out_dir, cache = tmp_path / "models", tmp_path / "cache"
    artifact = "/files/tiny-classifier/tiny-classifier-linear-8.onnx"
    before = served.hits(artifact)
    rc, out, err = pull(capsys, "tiny-classifier", "--catalog", served.url("/"), "-o", str(out_dir),
                         "--cache", str(cache))
    assert rc == 0, err
    expected = variant(site, "linear-8")
    path = Path(out.strip())
    assert path == (out_dir / "tiny-classifier-linear-8.onnx").resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected["sha256"]
    assert (cache / "blobs" / expected["sha256"]).is_file()
    assert "tiny-classifier linear-8:" in err and "verified" in err
    # a second pull is served from the cache: index.json is read again, the artifact is not
    assert served.hits(artifact) == before + 1
    index_hits = served.hits("/index.json")
    assert pull(capsys, "tiny-classifier", "--catalog", served.url("/"), "-o", str(out_dir),
                 "--cache", str(cache))[0] == 0
    assert served.hits(artifact) == before + 1
    assert served.hits("/index.json") == index_hits + 1


@pytest.mark.parametrize("choice, expected", [
    (["--variant", "linear-4"], "linear-4"),
    (["--variant", "float"], "float"),
    (["--max-size", "size:linear-8"], "linear-8"),
    (["--max-size", "size:linear-4"], "linear-4"),
    (["--min-agreement", "top1:linear-8"], "linear-8"),
    (["--min-agreement", "0"], "linear-4"),
])
def test_pull_honours_each_way_of_choosing_a_variant(served, site, tmp_path, capsys, choice, expected):
    flag, value = choice
    if value.startswith("size:"):
        value = str(variant(site, value[5:])["size"])
    elif value.startswith("top1:"):
        value = repr(top1(site, value[5:]))
    rc, out, err = pull(capsys, "tiny-classifier", flag, value, "--catalog", served.url("/"),
                         "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    m = site.doc["models"][0]
    entry = m["float"] if expected == "float" else variant(site, expected)
    assert Path(out.strip()).name == f"tiny-classifier-{expected}.onnx"
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == entry["sha256"]


def test_pull_with_an_unmeetable_constraint_names_the_best_available(served, site, tmp_path, capsys):
    smallest = variant(site, "linear-4")["size"]
    rc, out, err = pull(capsys, "tiny-classifier", "--max-size", str(smallest - 1), "--catalog", served.url("/"),
                         "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 1 and out == ""
    assert f"the smallest is 'linear-4' at {smallest} bytes" in err
    assert not (tmp_path / "d").exists() and files(tmp_path / "c") == []


def test_pull_rejects_a_percentage_for_min_agreement_as_a_usage_error(served, tmp_path, capsys):
    rc, _, err = pull(capsys, "tiny-classifier", "--min-agreement", "99", "--catalog", served.url("/"),
                       "-o", str(tmp_path / "d"))
    assert rc == 2 and "fraction such as 0.99" in err


def test_an_unknown_model_on_the_command_line_lists_the_catalog(served, tmp_path, capsys):
    rc, _, err = pull(capsys, "tiny", "--catalog", served.url("/"), "-o", str(tmp_path / "d"))
    assert rc == 1
    assert "no model 'tiny' in" in err and "Models there: tiny-classifier, tiny-embedder." in err


def test_pull_without_a_catalog_is_a_usage_error_and_the_environment_supplies_one(served, monkeypatch, tmp_path,
                                                                                 capsys):
    monkeypatch.delenv("QUANTZOO_CATALOG", raising=False)
    rc, _, err = pull(capsys, "tiny-classifier", "-o", str(tmp_path / "d"))
    assert rc == 2 and "set QUANTZOO_CATALOG" in err
    monkeypatch.setenv("QUANTZOO_CATALOG", served.url("/"))
    rc, out, err = pull(capsys, "tiny-classifier", "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert Path(out.strip()).name == "tiny-classifier-linear-8.onnx"


def test_pull_and_info_say_which_custom_ops_the_model_needs_and_pull_brings_the_implementation(tmp_path, capsys):
    from quantzoo.cli import main as cli
    from tinymodels import AFFINE_CODE, CUSTOM_OP, custom_op_catalog, custom_op_model

    catalog = custom_op_catalog(tmp_path / "site", custom_op_model(tmp_path / "m.onnx"))
    rc, out, err = pull(capsys, "tiny-custom", "--catalog", str(catalog), "-o", str(tmp_path / "out"),
                        "--cache", str(tmp_path / "cache"))
    assert rc == 0, err
    impl = tmp_path / "out" / "affine_impl.py"
    assert impl.read_text(encoding="utf-8") == AFFINE_CODE  # verified against index.json, beside the model
    assert (f"needs custom op {CUSTOM_OP} (class affine_impl:Affine, label=tiny, scale=0.5): implementation {impl}, "
            "sha256") in err and err.rstrip().endswith("verified")
    assert cli(["info", "tiny-custom", "--catalog", str(catalog)]) == 0
    info = capsys.readouterr().out
    assert f"custom op {CUSTOM_OP} (class affine_impl:Affine" in info
    assert str(catalog / "files" / "tiny-custom" / "affine_impl.py") in info
