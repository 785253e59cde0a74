"""Output-map previews (map-output models): PNGs of one input, the float model's output on it and
each variant's output on it, drawn the same way every time so a rerun gives the same bytes."""

from __future__ import annotations

import io
from pathlib import Path

from ..cache import Cache, atomic_path
from .plan import JobKeys, map_output
from .store import preview_path

PREVIEW_MAX_SIDE = 320


def map_png(y, lo: float, hi: float) -> bytes:
    """One [C, H, W] output map as PNG bytes, values lo..hi to black..white (C 3: colour)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(y, dtype=np.float64)
    if a.ndim == 3:
        a = a if a.shape[0] == 3 else a[:1]
        a = np.transpose(a, (1, 2, 0))
        a = a[:, :, 0] if a.shape[2] == 1 else a
    span = hi - lo if hi > lo else 1.0
    img = Image.fromarray(np.clip((a - lo) / span * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return png_bytes(img)


def input_png(x, preprocessing: dict) -> bytes | None:
    """The image a preprocessed input tensor ([1, C, H, W] or [1, H, W, C]) came from, as PNG
    bytes (`compare.preprocess.input_image` undoes the preprocessing); None when it is not an image."""
    from PIL import Image

    from ..compare.preprocess import input_image

    a = input_image(x, preprocessing)
    return None if a is None else png_bytes(Image.fromarray(a))


def png_bytes(img) -> bytes:
    """A PIL image as PNG bytes, scaled down to at most `PREVIEW_MAX_SIDE` pixels a side."""
    from PIL import Image

    w, h = img.size
    scale = PREVIEW_MAX_SIDE / max(w, h)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def preview_sample(ev, model, out_index: int) -> int:
    """Which sample the previews show: the first of the manifest's `samples` found in the data,
    else the one whose float output map has the largest mean (the most 'text' or signal)."""
    import numpy as np

    keys = [s.key for s in ev.samples]
    for name in model.samples or []:
        for i, k in enumerate(keys):
            if k == name or k.endswith("/" + name):
                return i
    best, best_v, i = 0, None, 0
    for batch in ev.reference[out_index]:
        if batch.dtype.names and "raw" in batch.dtype.names:  # a detector's record: its output map
            batch = batch["raw"]
        for row in batch:
            v = float(np.mean(np.abs(row)))
            if best_v is None or v > best_v:
                best, best_v = i, v
            i += 1
    return best


def sample_feed(ev, index: int) -> dict:
    """The model inputs of one sample (a batch of one) from the evaluation's prepared batches."""
    start = 0
    for batch in ev.batches:
        n = len(next(iter(batch.values())))
        if index < start + n:
            return ev.feed({k: v[index - start:index - start + 1] for k, v in batch.items()})
        start += n
    raise IndexError(index)


def sample_reference(ev, out_index: int, index: int):
    """The float model's (reduced) output `out_index` on one sample (a reduction that keeps the
    output itself beside other fields, like a detector's `boxes` record, gives its ``raw``)."""
    import numpy as np

    start = 0
    for batch in ev.reference[out_index]:
        if index < start + len(batch):
            row = np.asarray(batch[index - start])
            return row["raw"] if row.dtype.names and "raw" in row.dtype.names else row
        start += len(batch)
    raise IndexError(index)


def draw_previews(model, ev, keys: JobKeys, artifact_path: Path, artifact_sha256: str, cache: Cache) -> None:
    """Store the previews of one variant, and the float model's (with its input) if missing."""
    import onnxruntime as ort

    from ..customops import run, session_options

    out = map_output(model)
    j = ev.output_names.index(out["name"]) if out["name"] in ev.output_names else 0
    idx = preview_sample(ev, model, j)
    ref = sample_reference(ev, j, idx)
    lo, hi = (0.0, 1.0) if ref.min() >= 0 and ref.max() <= 1 else (float(ref.min()), float(ref.max()))
    feed = sample_feed(ev, idx)
    if not preview_path(cache, keys.float_preview).is_file():
        if len(feed) == 1:
            png = input_png(next(iter(feed.values())), model.preprocessing)
            if png is not None:
                with atomic_path(preview_path(cache, keys.float_preview, "input")) as tmp:
                    tmp.write_bytes(png)
        with atomic_path(preview_path(cache, keys.float_preview)) as tmp:
            tmp.write_bytes(map_png(ref, lo, hi))
    so = session_options(ev.custom_ops, artifact_path) if ev.custom_ops else None
    sess = ort.InferenceSession(str(artifact_path), so, providers=["CPUExecutionProvider"])
    y = run(sess, [ev.output_names[j]], feed)[0][0]
    with atomic_path(preview_path(cache, keys.preview(artifact_sha256))) as tmp:
        tmp.write_bytes(map_png(y, lo, hi))
