"""index.json, the catalog contract read by `quantzoo pull`: built models in, `catalog` entries out."""

from __future__ import annotations

from ..catalog import (CatalogIndex, CustomOpEntry, FileEntry, MetricSummary, ModelEntry, RuntimeResult, ShapeCheck,
                       ShapeEvaluation, ShapesEntry, Source, VariantEntry, index_json_bytes)
from .data import (BuiltCustomOp, BuiltModel, finite, float_file_name, public_file, recommend, site_file, source_sha256,
                   source_url, summary, variant_file_name)

__all__ = ["catalog_index", "index_document", "index_entry", "index_json_bytes"]


def _metrics(comparison: dict) -> dict[str, dict[str, MetricSummary]]:
    """A comparison's {output: {metric: summary}} with non-finite numbers as None."""
    return {output: {m: summary(v) for m, v in metrics.items() if isinstance(v, dict)}
            for output, metrics in (comparison.get("outputs") or {}).items()}


def _runtimes(matrix: dict) -> dict[str, RuntimeResult]:
    """A stored runtime matrix (`runtimes.compatibility`) as catalog entries."""
    return {name: RuntimeResult(bool(row.get("runs")), finite(row.get("max_abs_diff")), row.get("error"))
            for name, row in matrix.items()}


def _evaluation(doc: dict | None) -> ShapeEvaluation | None:
    """A verified shape's agreement on the evaluation data (`pipeline.shapeeval`) as a catalog entry."""
    if not doc:
        return None
    return ShapeEvaluation(int(doc["n"]), int(doc["batch"]), bool(doc["resized"]),
                           {o: {m: summary(x) for m, x in ms.items() if isinstance(x, dict)}
                            for o, ms in (doc.get("metrics") or {}).items()})


def _shapes(measured: dict | None) -> tuple[ShapesEntry | None, dict[str, float]]:
    """A stored shape measurement (`pipeline.flexible.measure`) as catalog entries; none without one."""
    if not measured:
        return None, {}
    checks = tuple(ShapeCheck(c["shape"], bool(c["runs"]), finite(c.get("max_abs_diff")), finite(c.get("top1_agreement")),
                              c.get("error"), _evaluation(c.get("evaluation"))) for c in measured.get("verified", []))
    return ShapesEntry(measured["accepted"], checks), dict(measured.get("throughput") or {})


def custom_op_entry(model_id: str, op: BuiltCustomOp) -> CustomOpEntry:
    """One custom op in index.json; its implementation file always lives in the site itself."""
    impl = FileEntry(site_file(model_id, op.file), op.size, op.sha256) if op.file else None
    return CustomOpEntry(op.op_type, op.domain, op.cls, op.description or None, op.attributes, op.nodes, impl)


def index_entry(bm: BuiltModel, artifact_base_url: str | None = None) -> ModelEntry:
    """One model's entry in index.json."""
    m = bm.model
    rec = recommend(bm)
    return ModelEntry(
        id=m.id, name=m.name, task=m.task, license=m.license.get("spdx"), parameters=bm.info.get("parameters"),
        source=Source(sha256=source_sha256(m), url=source_url(m)),
        float=FileEntry(public_file(m.id, float_file_name(m.id), artifact_base_url), bm.float_size, bm.float_sha256),
        recommended=rec.variant.id if rec else None,
        variants=tuple(
            VariantEntry(id=v.variant.id, mode=v.variant.mode, nbits=v.variant.nbits, granularity=v.variant.granularity,
                         file=public_file(m.id, variant_file_name(m.id, v.variant.id), artifact_base_url),
                         size=v.size, sha256=v.sha256, metrics=_metrics(v.comparison), runtimes=_runtimes(v.runtimes),
                         files=tuple(FileEntry(public_file(m.id, f["file"], artifact_base_url), f["size"], f["sha256"])
                                     for _, f in v.files), shapes=_shapes(v.shapes)[0], throughput=_shapes(v.shapes)[1])
            for v in bm.variants),
        float_runtimes=_runtimes(bm.float_runtimes),
        float_shapes=_shapes(bm.float_shapes)[0], float_throughput=_shapes(bm.float_shapes)[1],
        custom_ops=tuple(custom_op_entry(m.id, op) for op in bm.custom_ops))


def catalog_index(models: list[BuiltModel], artifact_base_url: str | None = None) -> CatalogIndex:
    """The whole index; models sorted by id so the bytes never depend on run order."""
    return CatalogIndex(tuple(index_entry(bm, artifact_base_url) for bm in sorted(models, key=lambda b: b.model.id)))


def index_document(models: list[BuiltModel], artifact_base_url: str | None = None) -> dict:
    """The index.json document as JSON data (`index_json_bytes` gives its exact bytes)."""
    return catalog_index(models, artifact_base_url).to_json()
