"""pipeline/run.py: the stages' glue that is not covered through a whole build elsewhere."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace as N

from quantzoo.cache import Cache
from quantzoo.pipeline.plan import ModelState
from quantzoo.pipeline.run import judged


def test_a_judge_is_keyed_by_its_float_files_hash_and_a_bad_one_fails_its_model(tmp_path):
    (tmp_path / "asr").mkdir()
    data = b"not really onnx: only hashed here"
    (tmp_path / "asr" / "asr.onnx").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    asr = N(id="asr", task="speech-recognition", path=tmp_path / "asr" / "model.yaml", labels=None,
            preprocessing={"adapter": "whisper-mel"},
            source={"kind": "file", "path": "asr.onnx", "sha256": sha, "size": len(data)})
    judge = {"model": "asr", "params": {"frames": 9}}
    tts = N(id="tts", path=None, preprocessing={"params": {"metrics": {"judge": judge}}})
    st = ModelState(tts)
    ident = judged(st, N(models={"asr": asr, "tts": tts}), Cache(tmp_path / "cache"))
    assert st.error is None and ident["float_sha256"] == sha and ident["params"] == {"frames": 9}
    assert judged(ModelState(N(id="m", path=None, preprocessing={})), N(models={}), Cache(tmp_path / "cache")) is None
    st = ModelState(tts)
    assert judged(st, N(models={"tts": tts}), Cache(tmp_path / "cache")) is None
    assert st.error.stage == "judge" and "no model 'asr' in the registry" in st.error.error
