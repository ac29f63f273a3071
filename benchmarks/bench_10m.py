"""Ten million customers on this machine: the generator to Parquet, then the monthly report.

Usage: ``python benchmarks/bench_10m.py [generate|report|all] [--customers N]
[--engine duckdb|spark]`` (``make bench-10m`` runs ``all`` at 10 M on DuckDB; never part
of ``make test``; ``--engine spark`` runs the report on Spark local mode, for information).

Everything goes to one folder, ``data/bench-10m/`` (``data/bench-<N>/`` for another size:
the sample's Parquet files, the report runs, the snapshot cache and DuckDB's spill), after
checking that the disk has room for it. The sample's sources YAML gets a ``duckdb:`` block
(memory limit 10 GB, spill in that folder). Prints the machine load (``uptime``) at the start and the end, and for each phase
the wall time and the peak resident memory of the whole process tree (this process, the
generator's workers, the notebook kernels), sampled every 0.2 s, against the targets:

- generate: 10 M customers to Parquet in under 10 min, peak RSS under 12 GiB;
- report: ``collect-kit report run`` of the monthly report on the Parquet sample, DuckDB,
  in under 20 min, peak RSS under 16 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from collect_kit import synth_parquet  # noqa: E402

FOLDER = ROOT / "data" / "bench-10m"  # set by main() for another size
DUCKDB_MEMORY = "10GB"  # DuckDB spills beyond this (the kernel's Python comes on top)
SPARK_MEMORY = "8g"  # the Spark driver's heap in local mode (--engine spark)
GIB = 2**30
BYTES_PER_CUSTOMER = 2_000  # Parquet (~650 B) + snapshot cache + spill, with room to spare
TARGETS = {"generate": (600.0, 12 * GIB), "report": (1200.0, 16 * GIB)}


class PeakMemory:
    """Peak of the summed RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just ended
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def check_space(n: int) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(FOLDER).free
    need = n * BYTES_PER_CUSTOMER
    if free < need:
        raise SystemExit(f"{FOLDER}: {free / GIB:.0f} GiB free, this benchmark needs about "
                         f"{need / GIB:.0f} GiB")  # fmt: skip
    print(f"{FOLDER}: {free / GIB:.0f} GiB free (about {need / GIB:.0f} GiB needed)")


def report_line(phase: str, seconds: float, peak: int, engine: str = "") -> None:
    limit_s, limit_b = TARGETS[phase]
    if engine == "spark":  # for information: the targets are DuckDB's
        print(f"{phase} on Spark local mode: {seconds:.0f} s, peak RSS {peak / GIB:.1f} GiB",
              flush=True)  # fmt: skip
        return
    print(f"{phase}: {seconds:.0f} s ({seconds / limit_s:.2f} of the {limit_s / 60:.0f} min "
          f"target), peak RSS {peak / GIB:.1f} GiB ({peak / limit_b:.2f} of "
          f"{limit_b / GIB:.0f} GiB)", flush=True)  # fmt: skip


def generate(n: int) -> Path:
    sample = FOLDER / "sample"
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        written = synth_parquet.write_sample(sample, n, seed=7, workers=2, overwrite=True)
        seconds = time.perf_counter() - t0
    rows = sum(written.rows.values())
    size = sum(f.stat().st_size for f in sample.rglob("*.parquet"))
    print(f"{n:,} customers: {rows:,} rows, {size / GIB:.1f} GiB of Parquet")
    report_line("generate", seconds, mem.peak)
    return written.sources


def with_duckdb_block(sources: Path) -> None:
    """Add the ``duckdb:`` block (memory limit, spill in the benchmark's folder) to the
    sample's sources YAML unless it has one (without it each connection takes half the RAM)."""
    cfg = yaml.safe_load(sources.read_text(encoding="utf-8"))
    if "duckdb" in cfg:
        return
    spill = FOLDER / "spill"
    with sources.open("a", encoding="utf-8") as f:
        f.write(f"duckdb: {{memory_limit: {DUCKDB_MEMORY}, temp_directory: '{spill}'}}\n")


def scaled_plan(path: Path, sources: Path, customers: int, out: Path | None = None) -> Path:
    """The packaged plan with its capacities scaled from the 20 000-customer sample to
    ``customers`` (a team ten times larger has about ten times the agents and budget),
    written to ``out`` (default ``plan.yaml`` in the benchmark's folder)."""
    plan = yaml.safe_load(path.read_text(encoding="utf-8"))
    here, k = path.parent, customers / 20_000
    plan["sources"] = str(sources)
    plan["segmentation"] = str((here / plan["segmentation"]).resolve())
    for t in plan["treatments"].values():
        if "measured" in t:
            t["measured"]["experiment"] = str((here / t["measured"]["experiment"]).resolve())
    cap = plan["capacity"]
    for key in ("agent_hours", "total_cost"):
        if key in cap:
            cap[key] = cap[key] * k
    for key in ("budget", "actions"):
        cap[key] = {name: v * k for name, v in cap.get(key, {}).items()}
    out = out or FOLDER / "plan.yaml"
    out.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return out


def report(sources: Path, customers: int, engine: str = "duckdb") -> None:
    config = FOLDER / f"monthly-{engine}.yaml"
    monthly = ROOT / "src/collect_kit/configs/reports/monthly.yaml"
    cfg = yaml.safe_load(monthly.read_text(encoding="utf-8"))
    here = monthly.parent  # the packaged config's paths are relative to its folder
    cfg["segmentation"] = str((here / cfg["segmentation"]).resolve())
    cfg["plan"] = str(scaled_plan((here / cfg["plan"]).resolve(), sources, customers))
    cfg["experiments"] = [str((here / e).resolve()) for e in cfg["experiments"]]
    cfg["sources"] = str(sources)
    if engine == "spark":  # local mode on this machine: the driver holds the whole book
        cfg["engine"] = "spark"
        cfg["spark"] = {"driver_memory": SPARK_MEMORY, "local_dir": str(FOLDER / "spark")}
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "COLLECT_KIT_CACHE": str(FOLDER / f"cache-{engine}")}
    out = FOLDER / f"reports-{engine}"
    cmd = [str(Path(sys.executable).with_name("collect-kit")), "report", "run", str(config),
           "--output-dir", str(out)]  # fmt: skip
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=FOLDER)
        seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"the report failed (exit {done.returncode}); see {out}")
    manifest = sorted(out.glob("*/*/manifest.json"))[-1]
    m = json.loads(manifest.read_text())
    for key in ("seconds_validate", "seconds_snapshots"):
        print(f"  {key[8:]:<24}{m[key]:8.1f} s")
    for nb in m["notebooks"]:
        print(f"  {nb['name']:<24}{nb['seconds_execute']:8.1f} s execute "
              f"{nb['seconds_export']:6.1f} s export")  # fmt: skip
    report_line("report", seconds, mem.peak, engine)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", nargs="?", default="all", choices=["generate", "report", "all"])
    ap.add_argument("--customers", type=int, default=10_000_000)
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    args = ap.parse_args()
    global FOLDER
    name = "10m" if args.customers == 10_000_000 else str(args.customers)
    FOLDER = ROOT / "data" / f"bench-{name}"
    print("start:", uptime())
    check_space(args.customers)
    sources = FOLDER / "sample" / "sources.yaml"
    if args.phase in ("generate", "all"):
        sources = generate(args.customers)
    if args.phase in ("report", "all"):
        with_duckdb_block(sources)
        report(sources, args.customers, args.engine)
    print("end:  ", uptime())


if __name__ == "__main__":
    main()
