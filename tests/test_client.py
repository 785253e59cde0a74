"""The catalog client: choosing a variant (pure), then list/info/pull/load against a small real
site served on 127.0.0.1 (or read from its folder).

The site is built here: a tiny real ONNX classifier, its variants written as real ONNX files
(fp16 + Cast, int8 and int4 DequantizeLinear), agreement measured with onnxruntime against the
float model, and an index.json in the catalog contract (issue 5).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from httpserver import LocalServer
from quantzoo import client
from quantzoo.cli import main
from quantzoo.errors import QuantzooError, UsageError


# --- pure selection ---------------------------------------------------------------------------

def _v(vid, size, **metrics):
    """A variant entry; metrics as output__metric=mean."""
    out: dict = {}
    for key, mean in metrics.items():
        output, metric = key.split("__")
        out.setdefault(output, {})[metric] = {"mean": mean, "std": 0.0, "n": 10}
    return {"id": vid, "size": size, "file": f"files/m/m-{vid}.onnx", "sha256": "0" * 64, "metrics": out}


MODEL = {"id": "m", "recommended": "linear-8", "float": {"file": "files/m/m-float.onnx", "size": 400, "sha256": "1" * 64},
         "variants": [_v("fp16", 200, y__top1_agreement=1.0, y__cosine=0.99999),
                      _v("linear-8", 100, y__top1_agreement=0.995, y__cosine=0.9999),
                      _v("kmeans-8", 100, y__top1_agreement=0.998, y__cosine=0.9999),
                      _v("linear-4", 50, y__top1_agreement=0.93, y__cosine=0.99),
                      _v("kmeans-2", 25, y__top1_agreement=0.40, y__cosine=0.9)]}


def test_without_a_choice_the_recommended_variant_is_taken():
    assert client.select_variant(MODEL)["id"] == "linear-8"


def test_a_named_variant_is_taken_and_float_names_the_original():
    assert client.select_variant(MODEL, variant="linear-4")["id"] == "linear-4"
    f = client.select_variant(MODEL, variant="float")
    assert (f["id"], f["file"], f["size"]) == ("float", "files/m/m-float.onnx", 400)


def test_an_unknown_variant_lists_the_variants_that_exist():
    with pytest.raises(QuantzooError) as e:
        client.select_variant(MODEL, variant="linear-3")
    assert "model 'm' has no variant 'linear-3'" in str(e.value)
    assert "Its variants: fp16, linear-8, kmeans-8, linear-4, kmeans-2 (or 'float' for the original)" in str(e.value)


def test_max_size_takes_the_most_agreeing_variant_that_fits():
    assert client.select_variant(MODEL, max_size=100)["id"] == "kmeans-8"   # 0.998 beats linear-8's 0.995
    assert client.select_variant(MODEL, max_size=99)["id"] == "linear-4"
    assert client.select_variant(MODEL, max_size=10_000)["id"] == "fp16"


def test_max_size_breaks_an_agreement_tie_with_the_smaller_file():
    m = {"id": "t", "variants": [_v("big", 90, y__top1_agreement=1.0), _v("small", 60, y__top1_agreement=1.0)]}
    assert client.select_variant(m, max_size=100)["id"] == "small"


def test_max_size_that_nothing_fits_names_the_smallest_variant():
    with pytest.raises(QuantzooError) as e:
        client.select_variant(MODEL, max_size=24)
    msg = str(e.value)
    assert "no variant of 'm' is at most 24 bytes" in msg
    assert "the smallest is 'kmeans-2' at 25 bytes" in msg and "Raise --max-size to at least 25" in msg


def test_min_agreement_takes_the_smallest_variant_that_reaches_it():
    assert client.select_variant(MODEL, min_agreement=0.9)["id"] == "linear-4"
    assert client.select_variant(MODEL, min_agreement=0.99)["id"] == "kmeans-8"  # same size as linear-8, agrees more
    assert client.select_variant(MODEL, min_agreement=0.999)["id"] == "fp16"
    assert client.select_variant(MODEL, min_agreement=0.0)["id"] == "kmeans-2"


def test_min_agreement_that_nothing_reaches_names_the_best_available():
    m = {"id": "m", "variants": MODEL["variants"][1:]}
    with pytest.raises(QuantzooError) as e:
        client.select_variant(m, min_agreement=0.999)
    msg = str(e.value)
    assert "no variant of 'm' reaches top1_agreement of output 'y' >= 0.999" in msg
    assert "the best is 'kmeans-8' with 0.998" in msg


def test_the_primary_metric_is_the_first_of_top1_string_iou_cosine_that_is_reported():
    assert client.primary_metric(MODEL) == ("y", "top1_agreement")
    ocr = {"variants": [{"metrics": {"text": {"cer": {"mean": 0.01}, "string_agreement": {"mean": 0.9}}}}]}
    assert client.primary_metric(ocr) == ("text", "string_agreement")
    det = {"variants": [{"metrics": {"prob": {"cosine": {"mean": 0.9}, "iou": {"mean": 0.8}}}}]}
    assert client.primary_metric(det) == ("prob", "iou")
    vad = {"variants": [{"metrics": {"stateN": {"cosine": {"mean": 0.9}}, "output": {"cosine": {"mean": 0.7}}}}]}
    assert client.primary_metric(vad) == ("output", "cosine")
    assert client.primary_metric({"variants": [{"metrics": {"y": {"snr_db": {"mean": 30}}}}]}) is None


def test_constraints_on_a_model_without_top1_rank_by_its_primary_metric():
    det = {"id": "det", "variants": [_v("a", 100, prob__iou=0.99, prob__cosine=0.5),
                                     _v("b", 50, prob__iou=0.95, prob__cosine=0.999)]}
    assert client.select_variant(det, min_agreement=0.96)["id"] == "a"      # by iou, not by cosine
    assert client.select_variant(det, max_size=100)["id"] == "a"


def test_constraints_on_a_model_without_any_primary_metric_ask_for_a_named_variant():
    m = {"id": "n", "variants": [_v("a", 10, y__snr_db=30.0)]}
    with pytest.raises(QuantzooError, match="reports none of the metrics .* Choose with --variant"):
        client.select_variant(m, max_size=100)


def test_variants_without_a_measured_primary_metric_are_never_chosen_by_a_constraint():
    m = {"id": "m", "variants": [_v("a", 10, y__top1_agreement=None), _v("b", 20, y__top1_agreement=0.5)]}
    assert client.select_variant(m, min_agreement=0.0)["id"] == "b"
    assert client.select_variant(m, max_size=20)["id"] == "b"


def test_a_model_without_a_recommended_variant_asks_for_a_choice():
    with pytest.raises(QuantzooError, match="no recommended variant .* Choose one with --variant"):
        client.select_variant({**MODEL, "recommended": None})


def test_an_unknown_model_lists_the_models_and_suggests_the_closest():
    doc = {"models": [{"id": "magika-standard-v3"}, {"id": "ppocr-v4-det"}]}
    with pytest.raises(QuantzooError) as e:
        client.find_model(doc, "magika", "http://x/index.json")
    assert str(e.value).startswith("no model 'magika' in http://x/index.json. Did you mean 'magika-standard-v3'? "
                                   "Models there: magika-standard-v3, ppocr-v4-det.")


def test_an_unknown_schema_version_says_which_versions_are_supported():
    with pytest.raises(QuantzooError) as e:
        client.parse_index(b'{"schema_version": 2, "models": []}', "http://x/index.json")
    assert "http://x/index.json has schema_version 2, but this quantzoo" in str(e.value)
    assert "reads schema_version 1 only" in str(e.value)
    with pytest.raises(QuantzooError, match="has no schema_version"):
        client.parse_index(b'{"models": []}', "index.json")


def test_a_malformed_index_reports_every_problem_with_its_key():
    doc = {"schema_version": 1, "models": [
        {"id": "a", "recommended": "zz", "variants": [
            {"id": "v", "file": "files/a/v.onnx", "size": -1, "sha256": "abc", "metrics": {}},
            {"id": "w", "file": "files/a/", "size": 3, "sha256": "a" * 64, "metrics": {"y": 1}}]},
        {"variants": None}]}
    with pytest.raises(QuantzooError) as e:
        client.validate_index(doc, "site/index.json")
    lines = str(e.value).splitlines()
    assert lines[0] == "site/index.json is malformed (7 problems):"
    assert lines[1:8] == [
        "  models[0] (a).variants[0].size: expected a byte count, found -1",
        "  models[0] (a).variants[0].sha256: expected 64 lowercase hex digits, found 'abc'",
        "  models[0] (a).variants[1].file: 'files/a/' does not end in a file name",
        "  models[0] (a).variants[1].metrics: expected {output: {metric: {mean, std, n}}}, found {\"y\": 1}",
        "  models[0] (a).recommended: 'zz' is not one of its variants (v, w)",
        "  models[1].id: expected a non-empty string, found nothing",
        "  models[1].variants: expected a list, found nothing",
    ]


def test_invalid_json_is_reported_with_where_it_broke():
    with pytest.raises(QuantzooError) as e:
        client.parse_index(b"<!DOCTYPE html><html>Not found</html>", "http://x/index.json")
    assert "http://x/index.json is malformed: not valid JSON (Expecting value at line 1 column 1" in str(e.value)


def test_published_files_are_found_relative_to_the_site_or_at_their_absolute_url(tmp_path):
    assert client.resolve("http://h/zoo/", "files/m/a.onnx") == "http://h/zoo/files/m/a.onnx"
    assert client.resolve("http://h/zoo/", "https://cdn.example/a.onnx") == "https://cdn.example/a.onnx"
    assert client.resolve(tmp_path, "files/m/a.onnx") == (tmp_path / "files/m/a.onnx").resolve()
    with pytest.raises(QuantzooError, match="points outside the catalog folder"):
        client.resolve(tmp_path, "../../etc/passwd")
    with pytest.raises(QuantzooError, match="does not end in a file name"):
        client.file_name("files/m/..")


def test_the_catalog_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTZOO_CATALOG", "https://zoo.example/")
    assert client.catalog_location(None) == "https://zoo.example/"
    assert client.catalog_location(str(tmp_path)) == tmp_path
    monkeypatch.delenv("QUANTZOO_CATALOG")
    with pytest.raises(UsageError, match="no catalog given: pass --catalog URL .* or set QUANTZOO_CATALOG"):
        client.catalog_location(None)
    with pytest.raises(UsageError, match="expected an http\\(s\\) URL or a local folder, found a ftp: address"):
        client.catalog_location("ftp://zoo.example/")


# --- a small real site ------------------------------------------------------------------------

D, C = 256, 256  # inputs, classes: the fp16 file (~131 kB) spans a few download chunks, so a cut resumes


@dataclass
class Site:
    root: Path
    doc: dict
    weights: dict  # variant id -> (dequantized W, b) of the classifier


def _onnx_model(weight_nodes, initializers, out_name="scores", opset=21):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", C])
    nodes = [*weight_nodes, helper.make_node("MatMul", ["x", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], [out_name])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_client")
    model.ir_version = 10
    return model.SerializeToString()


def _variants_of(w: np.ndarray, b: np.ndarray, out_name: str) -> dict[str, tuple[bytes, np.ndarray]]:
    """Real ONNX files of one classifier: float, fp16, per-channel int8 and int4 -> (bytes, W used)."""
    import ml_dtypes
    from onnx import TensorProto, helper, numpy_helper as nh

    bias = nh.from_array(b, "b")
    files = {"float": (_onnx_model([], [nh.from_array(w, "W"), bias], out_name), w)}
    w16 = w.astype(np.float16)
    files["fp16"] = (_onnx_model([helper.make_node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT)],
                                 [nh.from_array(w16, "W16"), bias], out_name), w16.astype(np.float32))
    for bits, dtype in ((8, np.int8), (4, ml_dtypes.int4)):
        qmax = 2 ** (bits - 1) - 1
        scale = (np.abs(w).max(axis=0) / qmax).astype(np.float32)
        q = np.clip(np.round(w / scale), -qmax - 1, qmax)
        node = helper.make_node("DequantizeLinear", ["Wq", "Wscale"], ["W"], axis=1)
        data = _onnx_model([node], [nh.from_array(q.astype(dtype), "Wq"), nh.from_array(scale, "Wscale"), bias],
                           out_name)
        files[f"linear-{bits}"] = (data, (q * scale).astype(np.float32))
    return files


def _measure(float_file: bytes, variant_file: bytes, out_name: str) -> dict:
    import onnxruntime as ort

    x = np.random.default_rng(7).standard_normal((256, D)).astype(np.float32)
    ref, got = (ort.InferenceSession(f, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
                for f in (float_file, variant_file))
    top1 = (ref.argmax(1) == got.argmax(1)).astype(np.float64)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    stats = {"top1_agreement": top1, "cosine": cos} if out_name == "scores" else {"cosine": cos}
    return {out_name: {k: {"mean": float(v.mean()), "std": float(v.std()), "n": len(v)} for k, v in stats.items()}}


def _entry(root: Path, model_id: str, name: str, data: bytes) -> dict:
    rel = f"files/{model_id}/{model_id}-{name}.onnx"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return {"file": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("site")
    rng = np.random.default_rng(0)
    models, weights = [], {}
    for model_id, task, out_name, recommended in (("tiny-classifier", "classification", "scores", "linear-8"),
                                                  ("tiny-embedder", "embedding", "embedding", "fp16")):
        w = rng.standard_normal((D, C)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        files = _variants_of(w, b, out_name)
        float_bytes = files["float"][0]
        variants = []
        for vid, (data, wq) in files.items():
            if vid == "float":
                continue
            mode, nbits = ("fp16", 16) if vid == "fp16" else ("linear", int(vid.split("-")[1]))
            variants.append({"id": vid, "mode": mode, "nbits": nbits, "granularity": "per_channel",
                             **_entry(root, model_id, vid, data), "metrics": _measure(float_bytes, data, out_name)})
            if model_id == "tiny-classifier":
                weights[vid] = (wq, b)
        models.append({"id": model_id, "name": f"Tiny {task} model", "task": task, "license": "Apache-2.0",
                       "parameters": D * C + C,
                       "source": {"sha256": hashlib.sha256(float_bytes).hexdigest(), "url": None},
                       "float": _entry(root, model_id, "float", float_bytes),
                       "recommended": recommended, "variants": variants})
    doc = {"schema_version": 1, "models": models}
    (root / "index.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return Site(root, doc, weights)


def _variant(site: Site, vid: str, model_id: str = "tiny-classifier") -> dict:
    m = next(m for m in site.doc["models"] if m["id"] == model_id)
    return next(v for v in m["variants"] if v["id"] == vid)


def _top1(site: Site, vid: str) -> float:
    return _variant(site, vid)["metrics"]["scores"]["top1_agreement"]["mean"]


@pytest.fixture(scope="module")
def served(site):
    """One server for the module (a server costs half a second to stop); hit counts are compared
    before and after, never absolute."""
    with LocalServer() as srv:
        srv.serve_dir(site.root)
        yield srv


def _pull(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["pull", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_the_site_variants_shrink_and_agree_less_as_bits_drop(site):
    # the constraint tests below lean on this ordering of the measured site
    sizes = [_variant(site, v)["size"] for v in ("fp16", "linear-8", "linear-4")]
    assert sizes == sorted(sizes, reverse=True)
    assert _top1(site, "fp16") >= _top1(site, "linear-8") > _top1(site, "linear-4")


def test_list_shows_every_model_with_its_recommended_variant(served, site, capsys):
    assert main(["list", "--catalog", served.url("/")]) == 0
    out = capsys.readouterr().out
    assert f"2 models in {served.url('/index.json')}" in out
    rows = [l for l in out.splitlines() if "tiny-" in l]
    assert len(rows) == 2
    assert "tiny-classifier" in rows[0] and "classification" in rows[0] and "linear-8" in rows[0]
    assert client.human_size(_variant(site, "linear-8")["size"]) in rows[0]
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
        assert client.human_size(_variant(site, vid)["size"]) in row
        assert f"{_top1(site, vid) * 100:.2f} %" in row
    assert "linear-8 *" in out


def test_pull_by_name_lands_the_recommended_variant_in_dir_and_prints_its_path(served, site, tmp_path, capsys):
    out_dir, cache = tmp_path / "models", tmp_path / "cache"
    artifact = "/files/tiny-classifier/tiny-classifier-linear-8.onnx"
    before = served.hits(artifact)
    rc, out, err = _pull(capsys, "tiny-classifier", "--catalog", served.url("/"), "-o", str(out_dir),
                         "--cache", str(cache))
    assert rc == 0, err
    expected = _variant(site, "linear-8")
    path = Path(out.strip())
    assert path == (out_dir / "tiny-classifier-linear-8.onnx").resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected["sha256"]
    assert (cache / "blobs" / expected["sha256"]).is_file()
    assert "tiny-classifier linear-8:" in err and "verified" in err
    # a second pull is served from the cache: index.json is read again, the artifact is not
    assert served.hits(artifact) == before + 1
    index_hits = served.hits("/index.json")
    assert _pull(capsys, "tiny-classifier", "--catalog", served.url("/"), "-o", str(out_dir),
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
        value = str(_variant(site, value[5:])["size"])
    elif value.startswith("top1:"):
        value = repr(_top1(site, value[5:]))
    rc, out, err = _pull(capsys, "tiny-classifier", flag, value, "--catalog", served.url("/"),
                         "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    m = site.doc["models"][0]
    entry = m["float"] if expected == "float" else _variant(site, expected)
    assert Path(out.strip()).name == f"tiny-classifier-{expected}.onnx"
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == entry["sha256"]


def test_pull_with_an_unmeetable_constraint_names_the_best_available(served, site, tmp_path, capsys):
    smallest = _variant(site, "linear-4")["size"]
    rc, out, err = _pull(capsys, "tiny-classifier", "--max-size", str(smallest - 1), "--catalog", served.url("/"),
                         "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 1 and out == ""
    assert f"the smallest is 'linear-4' at {smallest} bytes" in err
    assert not (tmp_path / "d").exists() and _files(tmp_path / "c") == []


def test_pull_rejects_a_percentage_for_min_agreement_as_a_usage_error(served, tmp_path, capsys):
    rc, _, err = _pull(capsys, "tiny-classifier", "--min-agreement", "99", "--catalog", served.url("/"),
                       "-o", str(tmp_path / "d"))
    assert rc == 2 and "fraction such as 0.99" in err


def test_pull_from_a_local_site_folder(site, tmp_path, capsys):
    rc, out, err = _pull(capsys, "tiny-embedder", "--catalog", str(site.root), "-o", str(tmp_path / "d"),
                         "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == _variant(site, "fp16", "tiny-embedder")["sha256"]


def test_an_interrupted_transfer_resumes_where_it_stopped(site, tmp_path, capsys):
    path = "/files/tiny-classifier/tiny-classifier-fp16.onnx"
    data = (site.root / path.lstrip("/")).read_bytes()
    with LocalServer() as srv:
        srv.serve_dir(site.root)
        srv.add(path, data, cut_after=[100_000])
        rc, out, err = _pull(capsys, "tiny-classifier", "--variant", "fp16", "--catalog", srv.url("/"),
                             "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
        gets = [h for m, p, h in srv.requests if p == path and m == "GET"]
    assert rc == 0, err
    assert Path(out.strip()).read_bytes() == data
    assert len(gets) == 2 and "Range" not in gets[0]
    assert gets[1]["Range"].startswith("bytes=") and 0 < int(gets[1]["Range"][6:-1]) <= 100_000
    assert gets[1]["If-Range"]


def _tampered_copy(site: Site, tmp_path: Path, how: str) -> tuple[Path, dict]:
    root = tmp_path / "tampered"
    shutil.copytree(site.root, root)
    entry = _variant(site, "linear-4")
    f = root / entry["file"]
    data = bytearray(f.read_bytes())
    if how == "flipped":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:-10]
    f.write_bytes(bytes(data))
    return root, entry


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_a_tampered_artifact_fails_clearly_and_leaves_nothing_behind(site, tmp_path, capsys, how):
    root, entry = _tampered_copy(site, tmp_path, how)
    out_dir, cache = tmp_path / "d", tmp_path / "c"
    with LocalServer() as srv:
        srv.serve_dir(root)
        rc, out, err = _pull(capsys, "tiny-classifier", "--variant", "linear-4", "--catalog", srv.url("/"),
                             "-o", str(out_dir), "--cache", str(cache))
        assert rc == 1 and out == ""
        assert f"/files/tiny-classifier/tiny-classifier-linear-4.onnx" in err
        assert entry["sha256"] in err and "index.json" in err
        assert _files(out_dir) == []
        assert [f for f in _files(cache) if not f.startswith("locks/")] == []
        # the other artifacts of the same site still pull
        rc, out, err = _pull(capsys, "tiny-classifier", "--catalog", srv.url("/"), "-o", str(out_dir),
                             "--cache", str(cache))
        assert rc == 0, err


def test_a_tampered_artifact_in_a_local_site_folder_fails_clearly_and_leaves_nothing_behind(site, tmp_path, capsys):
    root, entry = _tampered_copy(site, tmp_path, "flipped")
    out_dir, cache = tmp_path / "d", tmp_path / "c"
    rc, out, err = _pull(capsys, "tiny-classifier", "--variant", "linear-4", "--catalog", str(root),
                         "-o", str(out_dir), "--cache", str(cache))
    assert rc == 1 and out == ""
    assert f"does not match index.json: expected sha256 {entry['sha256']} ({entry['size']} bytes)" in err
    assert _files(out_dir) == [] and [f for f in _files(cache) if not f.startswith("locks/")] == []


def test_a_catalog_without_index_json_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with LocalServer() as srv:
        srv.serve_dir(tmp_path / "empty")
        assert main(["list", "--catalog", srv.url("/zoo")]) == 1
        assert f"no index.json at {srv.url('/zoo/index.json')} (HTTP 404)" in capsys.readouterr().err
    assert main(["list", "--catalog", str(tmp_path / "empty")]) == 1
    assert f"{tmp_path / 'empty'} has no index.json" in capsys.readouterr().err


@pytest.mark.parametrize("body, message", [
    (b"<html><body>Welcome</body></html>", "is malformed: not valid JSON"),
    (b'{"schema_version": 99, "models": []}', "has schema_version 99, but this quantzoo"),
    (b'{"schema_version": 1, "models": [{"id": "a"}]}', "models[0] (a).variants: expected a list, found nothing"),
])
def test_a_broken_index_json_is_a_clear_error_and_pulls_nothing(tmp_path, capsys, body, message):
    with LocalServer() as srv:
        srv.add("/index.json", body, content_type="application/json")
        rc, out, err = _pull(capsys, "a", "--catalog", srv.url("/"), "-o", str(tmp_path / "d"),
                             "--cache", str(tmp_path / "c"))
    assert rc == 1 and message in err
    assert not (tmp_path / "d").exists() and not (tmp_path / "c").exists()


def test_an_unknown_model_on_the_command_line_lists_the_catalog(served, tmp_path, capsys):
    rc, _, err = _pull(capsys, "tiny", "--catalog", served.url("/"), "-o", str(tmp_path / "d"))
    assert rc == 1
    assert "no model 'tiny' in" in err and "Models there: tiny-classifier, tiny-embedder." in err


def test_pull_without_a_catalog_is_a_usage_error_and_the_environment_supplies_one(served, monkeypatch, tmp_path,
                                                                                 capsys):
    monkeypatch.delenv("QUANTZOO_CATALOG", raising=False)
    rc, _, err = _pull(capsys, "tiny-classifier", "-o", str(tmp_path / "d"))
    assert rc == 2 and "set QUANTZOO_CATALOG" in err
    monkeypatch.setenv("QUANTZOO_CATALOG", served.url("/"))
    rc, out, err = _pull(capsys, "tiny-classifier", "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert Path(out.strip()).name == "tiny-classifier-linear-8.onnx"


def test_load_returns_the_verified_cached_file_or_a_session_that_runs_it(served, site, tmp_path):
    import quantzoo

    cache = tmp_path / "c"
    path = quantzoo.load("tiny-classifier", catalog=served.url("/"), cache=cache)
    assert path == cache.resolve() / "blobs" / _variant(site, "linear-8")["sha256"]
    sess = quantzoo.load("tiny-classifier", "fp16", catalog=served.url("/"), cache=cache, session=True)
    x = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    w, b = site.weights["fp16"]
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ w + b, rtol=1e-5, atol=1e-5)


def test_files_published_under_an_absolute_artifact_url_are_downloaded_from_there(served, site, tmp_path, capsys):
    doc = json.loads(json.dumps(site.doc))
    for m in doc["models"]:
        for v in m["variants"]:
            v["file"] = served.url("/" + v["file"])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.json").write_text(json.dumps(doc))   # index only: the files live on the server
    before = served.hits("/files/tiny-classifier/tiny-classifier-linear-8.onnx")
    rc, out, err = _pull(capsys, "tiny-classifier", "--catalog", str(tmp_path / "site"), "-o", str(tmp_path / "d"),
                         "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == _variant(site, "linear-8")["sha256"]
    assert served.hits("/files/tiny-classifier/tiny-classifier-linear-8.onnx") == before + 1
