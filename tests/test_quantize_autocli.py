"""autocli: `quantzoo quantize --auto --calibration DIR --target X` and `--recipe R.json`."""

from __future__ import annotations

import numpy as np

from auto_models import feeds, save
from quantzoo.cli import main


def test_auto_writes_an_artifact_and_a_recipe_that_reproduces_it(tmp_path, capsys):
    src = save(tmp_path)
    cal = tmp_path / "cal"
    cal.mkdir()
    for i, f in enumerate(feeds(16)):
        np.save(cal / f"s{i:02d}.npy", f["x"])
    out = tmp_path / "m-auto.onnx"
    assert main(["quantize", src, "-o", str(out), "--auto", "--calibration", str(cal), "--target", "30",
                 "--min-elements", "1024", "--cache", str(tmp_path / "cache")]) == 0
    said = capsys.readouterr().out
    recipe = tmp_path / "m-auto.recipe.json"
    assert "snr_db >= 30.0" in said and "met" in said and recipe.is_file()
    again = tmp_path / "again.onnx"
    assert main(["quantize", src, "-o", str(again), "--recipe", str(recipe)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_the_flags_say_what_is_missing(tmp_path, capsys):
    src = save(tmp_path)
    assert main(["quantize", src, "-o", str(tmp_path / "x.onnx")]) == 2
    assert "needs --mode MODE, --auto or --recipe" in capsys.readouterr().err
    assert main(["quantize", src, "-o", str(tmp_path / "x.onnx"), "--auto"]) == 2
    assert "--auto needs calibration data" in capsys.readouterr().err
    assert main(["quantize", src, "-o", str(tmp_path / "x.onnx"), "--auto", "--mode", "fp16",
                 "--calibration", "d"]) == 2
