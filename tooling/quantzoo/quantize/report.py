"""What a quantize run did: one row per compressed tensor, the skipped tensors and the sizes."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from .weights import Skipped

SCHEMA_VERSION = 1


def _sig(x: float, digits: int = 8) -> float:
    return float(f"{x:.{digits}g}")


@dataclass
class TensorRow:
    name: str
    scope: str
    op: str
    shape: list[int]
    elements: int
    bits: int
    granularity: str
    stored_bytes: int  # packed codes + tables/scales as written
    ideal_bytes: float  # elements * bits / 8 + float32 parameters
    relative_error: float  # ||w - decoded|| / ||w||
    note: str | None = None
    dtype: str = "float32"  # the weight's own dtype, which the decode produces
    channel_axis: int | None = None  # the output-channel axis the selector chose (per channel, per block)
    block_axis: int | None = None  # the input axis cut into blocks (per block)
    representation: str = "decode"  # "decode" (in-graph decode) or "native" (DequantizeLinear): native.py


@dataclass
class QuantizeReport:
    """Returned by `quantize_file`; `to_dict()` is deterministic, JSON-able data."""

    mode: str
    nbits: int | None
    granularity: str
    block_size: int | None
    group_size: int | None
    lut_function: str | None
    source_sha256: str
    tensors: list[TensorRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was done to the model first (legacy.py)
    source_bytes: int = 0
    artifact_bytes: int = 0
    artifact_sha256: str | None = None
    artifact_files: list[dict] = field(default_factory=list)  # [{file, sha256, size}] when several files

    @property
    def compressed_float_bytes(self) -> int:
        return sum((4 if r.dtype == "float32" else 2) * r.elements for r in self.tensors)

    @property
    def compressed_stored_bytes(self) -> int:
        return sum(r.stored_bytes for r in self.tensors)

    @property
    def ideal_bytes(self) -> float:
        return sum(r.ideal_bytes for r in self.tensors)

    @property
    def compressed_elements(self) -> int:
        return sum(r.elements for r in self.tensors)

    def to_dict(self) -> dict:
        rows = []
        for r in self.tensors:
            d = asdict(r)
            d["relative_error"] = _sig(r.relative_error)
            rows.append(d)
        return {
            "schema_version": SCHEMA_VERSION,
            "mode": self.mode, "nbits": self.nbits, "granularity": self.granularity,
            "block_size": self.block_size, "group_size": self.group_size, "lut_function": self.lut_function,
            "source_sha256": self.source_sha256, "artifact_sha256": self.artifact_sha256,
            "tensors": rows,
            "skipped": [asdict(s) for s in self.skipped],
            **({"notes": list(self.notes)} if self.notes else {}),
            "totals": {
                "source_bytes": self.source_bytes, "artifact_bytes": self.artifact_bytes,
                "compressed_tensors": len(self.tensors), "compressed_elements": self.compressed_elements,
                "compressed_float_bytes": self.compressed_float_bytes,
                "compressed_stored_bytes": self.compressed_stored_bytes,
                "ideal_bytes": _sig(self.ideal_bytes),
                "skipped_tensors": len(self.skipped),
            },
        } | ({"artifact_files": self.artifact_files} if self.artifact_files else {})

    def summary(self, max_rows: int = 60) -> str:
        """The text the CLI prints: a row per compressed tensor, skip reasons, totals."""
        what = self.mode + (f" {self.nbits}-bit" if self.nbits else "") + f" {self.granularity}"
        lines = [f"{what}: {len(self.tensors)} tensors compressed, {len(self.skipped)} left as they are"]
        lines += [f"  note: {n}" for n in self.notes]
        w = max([len(r.name) for r in self.tensors[:max_rows]] + [6])
        w = min(w, 60)
        lines.append(f"  {'tensor':<{w}}  {'op':<13} {'elements':>10} {'bits':>4} {'rel. error':>10}")
        for r in self.tensors[:max_rows]:
            name = r.name if len(r.name) <= w else "…" + r.name[-(w - 1):]
            lines.append(f"  {name:<{w}}  {r.op:<13} {r.elements:>10} {r.bits:>4} {r.relative_error:>10.4g}"
                         + (f"  ({r.note})" if r.note else ""))
        if len(self.tensors) > max_rows:
            lines.append(f"  … and {len(self.tensors) - max_rows} more")
        reasons = Counter(_reason_kind(s.reason) for s in self.skipped)
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  skipped {n:>4}: {reason}")
        mb = 1 / 1e6
        lines.append(f"  compressed tensors: {self.compressed_float_bytes * mb:.3f} MB float32 -> "
                     f"{self.compressed_stored_bytes * mb:.3f} MB stored (ideal {self.ideal_bytes * mb:.3f} MB)")
        lines.append(f"  file: {self.source_bytes * mb:.3f} MB -> {self.artifact_bytes * mb:.3f} MB"
                     + (f" ({self.artifact_bytes / self.source_bytes:.1%})" if self.source_bytes else ""))
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    if "elements < min_elements" in reason:
        return "smaller than min_elements"
    if reason.startswith("not a weight"):
        return "not a weight input (bias, normalisation, shape or other)"
    if reason.startswith("excluded by pattern"):
        return reason
    return reason
