"""The monthly report end to end: three notebooks, HTML and PDF, timed by phase.

Usage: ``python benchmarks/bench_report.py [N ...]`` (default 20000 1000000 customers).

For each size it generates the sample (seed 7) into a DuckDB file in ``data/bench-report/``
(once: a later run reuses the file; not part of the report's time), then runs the monthly
report (``configs/reports/monthly.yaml`` with the strategy plan's capacities scaled from
20 000 customers to the book's size, as ``bench_10m.py`` does) as a scheduler would (a
fresh snapshot cache and output folder, so nothing is reused) and prints, from the run's
manifest:

- validate: loading and validating the portfolio once for the run;
- snapshots: the point-in-time snapshots the notebooks read (as_of, the previous month
  end and the risk model's training month end), computed once for the run;
- per notebook: kernel (papermill's kernel start and stop: execute minus the cells'
  own durations), compute (the cells) and export (HTML and PDF);
- the total against the 120 s target for 1 M customers (ratio below 1.0 is within it),
  and the machine load (``uptime``) at the start and the end.

It also measures the fixed per-notebook overhead the same way on a notebook with only a
parameters cell and the package import, executed and exported by the runner's code path
(target under 5 s).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_10m import scaled_plan, uptime  # noqa: E402

from collect_kit import engine, synth  # noqa: E402
from collect_kit.reports import export  # noqa: E402
from collect_kit.reports.runner import KERNEL, run_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MONTHLY = ROOT / "src/collect_kit/configs/reports/monthly.yaml"
DATA = ROOT / "data" / "bench-report"
TARGET_1M_S = 120.0
OVERHEAD_TARGET_S = 5.0


def fixed_overhead(folder: Path) -> tuple[float, float]:
    """(execute, export) seconds of a notebook that only imports the package."""
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("as_of = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import collect_kit.reports.pages  # noqa")]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    src, out = folder / "empty.ipynb", folder / "empty-out.ipynb"
    nbformat.write(nb, src)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(out), parameters={"as_of": "2026-10-31"},
                        kernel_name=KERNEL, progress_bar=False)  # fmt: skip
    t1 = time.perf_counter()
    doc = export.html_document(export.notebook_body(out), "x", "x", "en", "A4")
    export.write_html(doc, folder / "empty.html")
    export.write_pdf(doc, folder / "empty.pdf")
    return t1 - t0, time.perf_counter() - t1


def sample_database(n: int) -> Path:
    """The seed-7 sample of ``n`` customers in a DuckDB file, generated once."""
    db = DATA / f"sample-{n}.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        DATA.mkdir(parents=True, exist_ok=True)
        partial = db.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        engine.write_database(partial, synth.generate(n, seed=7).tables)
        partial.rename(db)
        print(f"\n{n:,} customers: sample generated and written in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    return db


def scaled_config(n: int) -> Path:
    """The packaged monthly report with absolute paths and the plan scaled to ``n``."""
    cfg = yaml.safe_load(MONTHLY.read_text(encoding="utf-8"))
    here = MONTHLY.parent
    sources = (here / cfg["sources"]).resolve()
    cfg["sources"] = str(sources)
    cfg["segmentation"] = str((here / cfg["segmentation"]).resolve())
    cfg["experiments"] = [str((here / e).resolve()) for e in cfg["experiments"]]
    plan = scaled_plan((here / cfg["plan"]).resolve(), sources, n, DATA / f"plan-{n}.yaml")
    cfg["plan"] = str(plan)
    out = DATA / f"monthly-{n}.yaml"
    out.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return out


def one_size(n: int) -> float:
    db, config = sample_database(n), scaled_config(n)
    cache, reports = DATA / f"cache-{n}", DATA / f"reports-{n}"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(reports, ignore_errors=True)
    os.environ["COLLECT_KIT_CACHE"] = str(cache)
    print(f"\n{n:,} customers; start: {uptime()}")
    t0 = time.perf_counter()
    result = run_report(config, output_dir=reports, database=db)
    total = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"report failed: {result.error}")
    m = json.loads((result.folder / "manifest.json").read_text())
    print(f"  {'validate':<28}{m['seconds_validate']:8.1f} s")
    dates = len(m["parameters"]["snapshots"])
    print(f"  {f'snapshots ({dates} month ends)':<28}{m['seconds_snapshots']:8.1f} s")
    print(f"  {'notebook':<20}{'kernel':>8}{'compute':>9}{'export':>8}")
    for nb in m["notebooks"]:
        kernel = nb["seconds_execute"] - nb["seconds_cells"]
        print(
            f"  {nb['name']:<20}{kernel:8.1f}{nb['seconds_cells']:9.1f}{nb['seconds_export']:8.1f}"
        )
    print(f"  {'total':<28}{total:8.1f} s; end: {uptime()}")
    return total


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        execute, exported = fixed_overhead(Path(tmp))
    overhead = execute + exported
    print(f"Fixed per-notebook overhead: kernel + import {execute:.1f} s, "
          f"export {exported:.1f} s = {overhead:.1f} s; "
          f"ratio to the {OVERHEAD_TARGET_S:.0f} s target: {overhead / OVERHEAD_TARGET_S:.2f}")  # fmt: skip
    for n in sizes:
        total = one_size(n)
        if n >= 1_000_000:
            ratio = total / TARGET_1M_S * (1_000_000 / n)
            print(f"  ratio to the {TARGET_1M_S:.0f} s target for 1 M customers: {ratio:.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [20_000, 1_000_000])
