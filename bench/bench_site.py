"""Site build times: the default catalog cold and warm, and page generation at 1,000 models.

1. `quantzoo build` of the default zoo (every model × its 12 variants) into a fresh cache whose
   fetched sources are linked from the user cache (so "cold" means: nothing quantized, compared
   or published yet, and no network), then the same command again ("warm": everything reused).
2. Page generation + MkDocs build + files + viewer + index.json for a synthetic registry of
   1,000 models × 12 variants (real manifests and tiny real ONNX files, invented metrics).
   Target: at most 120 s.

    python bench/bench_site.py [--models N] [--skip-catalog]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 120.0


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def synthetic(n_models: int) -> dict:
    from quantzoo.publish import publish_site
    from quantzoo.publish.synthetic import synthetic_results, write_synthetic_zoo

    with tempfile.TemporaryDirectory(prefix="qz-bench-site-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        reg = write_synthetic_zoo(root / "zoo", n_models)
        built = synthetic_results(reg, root / "work")
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        report = publish_site(built, root / "site", registry=reg)
        wall = time.perf_counter() - t1
        n_var = sum(len(b.variants) for b in built)
        out = {"models": n_models, "variants": n_var, "pages": report.pages,
               "setup_s (not timed: manifests, tiny models, invented metrics)": round(setup, 2),
               "render_s": round(report.seconds["render"], 2), "mkdocs_s": round(report.seconds["mkdocs"], 2),
               "files_viewer_index_s": round(report.seconds["files"], 2), "total_s": round(wall, 2),
               "target_s": TARGET_S, "meets_target": wall <= TARGET_S,
               "site_bytes": _du(root / "site"),
               "catalog_html_bytes": (root / "site" / "index.html").stat().st_size}
    print(f"synthetic {n_models} models x {n_var // max(n_models, 1)} variants: {wall:.1f} s "
          f"(render {out['render_s']} s, mkdocs {out['mkdocs_s']} s)", flush=True)
    return out


def _user_cache() -> Path:
    from quantzoo.cache import cache_root

    return cache_root()


def _link_sources(user: Path, fresh: Path) -> None:
    """Make `fresh` see the user cache's fetched sources (and PyTorch conversions), nothing else."""
    fresh.mkdir(parents=True, exist_ok=True)
    for name in ("blobs", "trees", "downloads"):
        if (user / name).exists():
            os.symlink(user / name, fresh / name)
    if (user / "derived" / "convert").exists():
        (fresh / "derived").mkdir(exist_ok=True)
        os.symlink(user / "derived" / "convert", fresh / "derived" / "convert")


def _run_build(cache: Path, site: Path) -> tuple[float, str, int]:
    cmd = [str(REPO / ".venv" / "bin" / "quantzoo"), "build", "--cache", str(cache), "--site-dir", str(site)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, proc.stderr + proc.stdout, proc.returncode


def _counts(log: str) -> dict:
    m = re.search(r"(\d+) model × variant results: (\d+) reused from the cache, (\d+) quantized, (\d+) compared", log)
    if not m:
        return {}
    out: dict = dict(zip(("results", "reused", "quantized", "compared"), map(int, m.groups())))
    stages = re.search(r"worker time by stage: (.*)", log)
    if stages:
        out["worker_seconds"] = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", stages.group(1))}
    pub = re.search(r"published in ([\d.]+) s", log)
    if pub:
        out["publish_s"] = float(pub.group(1))
    return out


def default_catalog() -> dict:
    from quantzoo.registry import load_registry

    reg = load_registry(REPO / "zoo")
    # fetch first (into the user cache), so the timed runs measure quantize + compare + publish
    subprocess.run([str(REPO / ".venv" / "bin" / "quantzoo"), "fetch"], cwd=REPO, check=True)
    with tempfile.TemporaryDirectory(prefix="qz-bench-catalog-") as tmp:
        cache, site = Path(tmp) / "cache", Path(tmp) / "site"
        _link_sources(_user_cache(), cache)
        cold, cold_log, cold_rc = _run_build(cache, site)
        print(f"default catalog cold: {cold:.1f} s (exit {cold_rc})", flush=True)
        warm, warm_log, warm_rc = _run_build(cache, site)
        print(f"default catalog warm: {warm:.1f} s (exit {warm_rc})", flush=True)
        failures = [ln.strip() for ln in cold_log.splitlines() if "FAILED" in ln]
        out = {"models": sorted(reg.models), "variants": sum(len(m.variants) for m in reg.models.values()),
               "jobs": os.cpu_count(), "cold_s": round(cold, 1), "warm_s": round(warm, 1),
               "cold_exit": cold_rc, "warm_exit": warm_rc, "cold_counts": _counts(cold_log),
               "warm_counts": _counts(warm_log), "failures": failures,
               "warm_said_nothing_changed": "nothing changed" in warm_log,
               "site_bytes": _du(site) if site.exists() else None}
        shutil.rmtree(cache, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--skip-catalog", action="store_true")
    args = ap.parse_args()
    payload = {"synthetic_publish": synthetic(args.models)}
    if not args.skip_catalog:
        payload["default_catalog"] = default_catalog()
    payload["notes"] = ("cold: a fresh cache with the fetched sources linked in (no network, nothing quantized or "
                        "compared); warm: the same command again. synthetic: publish_site only (Jinja2 pages, "
                        "MkDocs Material build with search, files hard-linked, Netron bundle, index.json).")
    write_result("site", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
