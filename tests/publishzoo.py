"""A small synthetic zoo for the publish tests: real manifests through the real registry, real
tiny ONNX files, invented metrics (`quantzoo.publish.synthetic`)."""

from __future__ import annotations

import dataclasses
import json

from quantzoo.publish.synthetic import synthetic_results, write_synthetic_zoo

EVIL = ('<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2"> '
        '[click](javascript:window.__pwned=3) **bold**')


def synthetic(root):
    """(registry, built models) of a five-model synthetic zoo whose descriptions carry markup."""
    reg = write_synthetic_zoo(root / "zoo", 5, description=EVIL)
    return reg, synthetic_results(reg, root / "work")


def with_metric(bm, values: dict[str, float | None], ci95: dict[str, list | None] | None = None):
    """A copy of `bm` whose threshold metric takes `values[variant id]`, with the interval
    `ci95[variant id]` (none when not given)."""
    thr = bm.model.threshold
    variants = []
    for v in bm.variants:
        comp = json.loads(json.dumps(v.comparison))
        if v.variant.id in values:
            comp["outputs"][thr["output"]][thr["metric"]]["mean"] = values[v.variant.id]
            comp["outputs"][thr["output"]][thr["metric"]]["ci95"] = (ci95 or {}).get(v.variant.id)
        variants.append(dataclasses.replace(v, comparison=comp))
    return dataclasses.replace(bm, variants=variants)


LICENSES = (("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0"), ("MIT", "https://opensource.org/license/mit"),
            ("BSD-3-Clause", "https://opensource.org/license/bsd-3-clause"), ("CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"))


def catalog_zoo(root, n: int = 24):
    """(registry, built models) of an `n`-model synthetic zoo for the catalog page: every task, and
    licenses cycling through `LICENSES` (model i gets LICENSES[i % 4])."""
    from quantzoo.registry import load_registry

    write_synthetic_zoo(root / "zoo", n)
    for i, manifest in enumerate(sorted((root / "zoo" / "models").glob("*/model.yaml"))):
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        spdx, url = LICENSES[i % len(LICENSES)]
        doc["license"] = {"spdx": spdx, "url": url}
        manifest.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    reg = load_registry(root / "zoo")
    return reg, synthetic_results(reg, root / "work")
