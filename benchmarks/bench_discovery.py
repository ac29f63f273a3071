"""Segment discovery speed on a large book.

Usage: ``python benchmarks/bench_discovery.py [N]`` (default 1 000 000 customers).

A seeded sample of N customers is generated and written to DuckDB (not timed). Timed:

- the two month-end snapshots (training and evaluation month ends), computed once on the
  engine and kept there (``Table.cache()``): what a report run's snapshot cache holds;
- ``discover`` with those snapshots: the engine-side pull of a hash sample of at most
  200 000 customers' features and labels, the tree, the cascade and its round trip through
  the loader, and the out-of-time evaluation of the proposal and of the current
  segmentation on every customer owing at both month ends (aggregates only), plus the
  migration between them.

Target: ``discover`` under 60 s on this machine (2 cores), snapshots quoted separately.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from collect_kit import engine, sources, synth  # noqa: E402
from collect_kit import segmentation as sg  # noqa: E402
from collect_kit.discovery.config import load_discovery  # noqa: E402
from collect_kit.discovery.run import dates, discover  # noqa: E402

CONFIG = (
    Path(__file__).resolve().parents[1]
    / "src/collect_kit/configs/discovery/consumer_propensity.yaml"
)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        sample = synth.generate(n, seed=3)
        engine.write_database(folder / "book.duckdb", sample.tables)
        del sample
        (folder / "sources.yaml").write_text(
            f"portfolio: bench\ncurrency: CLP\nextraction_date: 2026-10-31\n"
            f"database: {folder / 'book.duckdb'}\n"
        )
        print(
            f"{n:,} customers generated and written in {time.perf_counter() - t:.1f} s (not timed)"
        )
        portfolio = sources.load(folder / "sources.yaml")
        cfg, _ = load_discovery(CONFIG)
        t0, t1 = dates(cfg, portfolio, CONFIG)
        t = time.perf_counter()
        snaps = {d: sg.portfolio_snapshot(None, portfolio, d).cache() for d in (t0, t1)}
        snap_s = time.perf_counter() - t
        t = time.perf_counter()
        found = discover(CONFIG, portfolio=portfolio, snapshots=snaps)
        disc_s = time.perf_counter() - t
        print(f"snapshots at {t0.date()} and {t1.date()}: {snap_s:.1f} s (cached on the engine)")
        print(f"discover: {disc_s:.1f} s (target 60 s): {found.sampled:,} customers sampled, "
              f"{len(found.rules.segments)} segments, rounding moved {found.proposal.moved:.2%}")  # fmt: skip
        for key, ev in found.evidence.items():
            print(f"  {key}: Gini {ev['gini']:.3f}, spread {ev['spread']:.1%}, PSI {ev['psi']:.4f}")
        for s in found.rules.segments:
            print("  -", s.name)


if __name__ == "__main__":
    main()
