"""Dataset adapters: what each turns real files into."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare import datasets as D
from quantzoo.errors import QuantzooError


def _write(root: Path, rel: str, data: bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_every_adapter_record_is_filed_under_its_own_name():
    for name, adapter in D.DATASET_ADAPTERS.items():
        assert adapter.name == name and callable(adapter.read) and adapter.description


def test_files_adapter_lists_every_file_sorted_with_folder_labels_and_exclusions(tmp_path):
    for rel in ["python/b.py", "python/b.py.output", "c/a.c", "README"]:
        _write(tmp_path, rel, b"x = 1\n")
    samples = D.files_dataset(tmp_path, {"exclude": ["*.output"], "labels": {"from": "folder"}}, [])
    assert [(s.key, s.label) for s in samples] == [("README", None), ("c/a.c", "c"), ("python/b.py", "python")]
    assert all(isinstance(s.data, Path) for s in samples)


def test_limit_spreads_the_chosen_files_over_the_whole_listing(tmp_path):
    for i in range(10):
        _write(tmp_path, f"f{i}.txt", b"1")
    keys = [s.key for s in D.files_dataset(tmp_path, {"limit": 3}, [])]
    assert keys == ["f0.txt", "f3.txt", "f6.txt"]


def test_images_adapter_skips_and_counts_files_that_are_not_images(tmp_path):
    Image.new("RGB", (8, 6), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (5, 5), 128).save(tmp_path / "grey.jpg")
    _write(tmp_path, "notes.txt", b"not an image")
    good = (tmp_path / "red.png").read_bytes()
    _write(tmp_path, "truncated.png", good[: len(good) // 2])
    skipped: list = []
    samples = D.images_dataset(tmp_path, {}, skipped)
    assert [s.key for s in samples] == ["grey.jpg", "red.png"]
    assert samples[1].data.size == (8, 6)
    assert [k for k, _ in skipped] == ["notes.txt", "truncated.png"]
    assert all("not a readable image" in reason for _, reason in skipped)


def test_arrays_adapter_reads_npy_and_npz_and_skips_other_files(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(4, dtype=np.float32))
    np.savez(tmp_path / "b.npz", x=np.ones(2), y=np.zeros(3))
    _write(tmp_path, "c.txt", b"1 2 3")
    skipped: list = []
    samples = D.arrays_dataset(tmp_path, {}, skipped)
    assert samples[0].data[None].tolist() == [0, 1, 2, 3]
    assert sorted(samples[1].data) == ["x", "y"]
    assert skipped == [("c.txt", "not a .npy or .npz file")]


@pytest.fixture(scope="module")
def font(catalog_dataset):
    return catalog_dataset("rendered-text-lines")


@pytest.mark.slow
def test_rendered_lines_are_the_same_for_the_same_seed_and_labelled_with_their_text(font):
    params = {"seed": 3, "count": 6}
    a = D.rendered_text_lines(font, params, [])
    b = D.rendered_text_lines(font, params, [])
    c = D.rendered_text_lines(font, {"seed": 4, "count": 6}, [])
    assert [s.label for s in a] == [s.label for s in b]
    assert [s.data.tobytes() for s in a] == [s.data.tobytes() for s in b]
    assert [s.label for s in a] != [s.label for s in c]
    for s in a:
        assert s.data.height == 48 and s.data.mode == "L" and s.label.strip() == s.label and s.label
        assert s.data.width <= 320
        assert np.asarray(s.data).min() < 64  # there is dark text on the white line


@pytest.mark.slow
def test_rotated_lines_turn_every_other_line_upside_down_and_label_the_angle(font):
    upright = D.rendered_text_lines(font, {"seed": 5, "count": 4}, [])
    turned = D.rendered_text_lines(font, {"seed": 5, "count": 4, "rotate180": True}, [])
    assert [s.label for s in turned] == ["0", "180", "0", "180"]
    assert turned[0].data.tobytes() == upright[0].data.tobytes()
    assert turned[1].data.tobytes() == upright[1].data.transpose(Image.Transpose.ROTATE_180).tobytes()


def test_augmented_images_give_every_photo_the_same_grid_of_views_labelled_by_file_name(tmp_path):
    a = np.zeros((60, 80, 3), np.uint8)
    a[:, :40] = 255  # left half white
    Image.fromarray(a).save(tmp_path / "half.png")
    Image.new("RGB", (50, 50), (0, 128, 0)).save(tmp_path / "green.png")
    params = {"crops": [[1.0, "center"], [0.5, "top-left"]], "flips": [False, True], "rotations": [0, 8],
              "classes": {"half.png": "half"}}
    views = D.augmented_images(tmp_path, params, [])
    again = D.augmented_images(tmp_path, params, [])
    assert len(views) == 2 * 2 * 2 * 2
    assert [v.key for v in views[:3]] == ["green.png", "green.png#rot+8", "green.png#flip"]
    assert {v.label for v in views if v.key.startswith("half")} == {"half"}
    assert {v.label for v in views if v.key.startswith("green")} == {None}
    assert [v.data.tobytes() for v in views] == [v.data.tobytes() for v in again]
    by_key = {v.key: np.asarray(v.data) for v in views}
    assert by_key["half.png#crop0.5-top-left"].min() == 255  # the top-left quarter is all white
    assert (by_key["half.png#flip"][:, :40] == 0).all()  # mirrored: the white half is now on the right


def test_a_font_that_is_not_a_font_is_a_clear_error(tmp_path):
    bad = _write(tmp_path, "x.ttf", b"nope")
    with pytest.raises(QuantzooError, match="cannot load the font"):
        D.rendered_text_lines(bad, {}, [])


def test_only_views_of_photos_are_clustered_by_their_photo():
    from quantzoo.compare.datasets import DATASET_ADAPTERS

    cluster = DATASET_ADAPTERS["augmented-images"].cluster
    assert cluster("coffee.png#crop0.8-top-left+flip") == cluster("coffee.png") == "coffee.png"
    # adapters that make several samples from one photo or page cluster them; the others do not
    assert {n for n, a in DATASET_ADAPTERS.items() if a.cluster is None} >= {
        "files", "images", "arrays", "rendered-text-lines", "uci-digits"}
    assert {"augmented-images", "class-index-views", "quarter-turns"} <= {
        n for n, a in DATASET_ADAPTERS.items() if a.cluster is not None}


def test_uci_digits_reads_scikit_learns_csv_into_8x8_images_labelled_by_digit(tmp_path):
    import gzip

    rows = [",".join([str(i % 17)] * 64 + [str(i % 10)]) for i in range(17)]
    f = _write(tmp_path, "blob", gzip.compress(("\n".join(rows) + "\n").encode()))
    skipped: list = []
    samples = D.uci_digits(f, {}, skipped)
    assert [s.key for s in samples[:2]] == ["digit-0000", "digit-0001"] and skipped == []
    assert samples[3].label == "3" and samples[3].data.size == (8, 8)
    assert np.asarray(samples[16].data).max() == 16  # raw 0..16 counts; the preprocessing scales them
    assert len(D.uci_digits(f, {"limit": 4}, [])) == 4 and len(samples) == 17
    bad = _write(tmp_path, "bad.csv", b"1,2,3\n")
    assert D.uci_digits(bad, {}, skipped) == [] and skipped[0][0] == "digit-0000"
    assert "uci-digits" in D.DATASET_ADAPTERS


def test_styled_photos_pair_every_photo_with_each_style_and_cluster_by_photo(tmp_path):
    for name in ("b.png", "a.png"):
        Image.new("RGB", (6, 4)).save(tmp_path / name)
    adapter = D.DATASET_ADAPTERS["styled-photos"]
    samples = adapter.read(tmp_path, {"styles": [19, 2]}, [])
    assert [s.key for s in samples] == ["a.png#style-19", "a.png#style-2", "b.png#style-19", "b.png#style-2"]
    assert samples[1].data["style"] == 2 and samples[1].data["image"].size == (6, 4)
    assert {adapter.cluster(s.key) for s in samples} == {"a.png", "b.png"}
    with pytest.raises(QuantzooError, match="style indices"):
        adapter.read(tmp_path, {"styles": ["x"]}, [])


def test_matted_photos_label_a_photo_with_its_binarised_matte(tmp_path):
    from quantzoo.compare.imagemetrics import decode_mask

    Image.new("RGB", (4, 2)).save(tmp_path / "p.png")
    Image.new("RGB", (4, 2)).save(tmp_path / "q.png")
    matte = np.array([[0, 100, 200, 255], [127, 128, 0, 255]], np.uint8)
    (tmp_path / "m").mkdir()
    Image.fromarray(matte).save(tmp_path / "m" / "p_alpha.png")
    read = D.DATASET_ADAPTERS["matted-photos"].read
    samples = read(tmp_path, {"include": ["p.png", "q.png"], "mattes": {"p.png": "m/p_alpha.png"}}, [])
    assert [s.key for s in samples] == ["p.png", "q.png"] and samples[1].label is None
    assert decode_mask(samples[0].label).tolist() == [[False, False, True, True], [False, True, False, True]]
    with pytest.raises(QuantzooError, match="not among"):
        read(tmp_path, {"include": ["q.png"], "mattes": {"p.png": "m/p_alpha.png"}}, [])
    with pytest.raises(QuantzooError, match="not in the dataset folder"):
        read(tmp_path, {"include": ["p.png"], "mattes": {"p.png": "m/none.png"}}, [])
