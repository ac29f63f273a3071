"""Write a synthetic sample of any size to Parquet, chunk by chunk, in bounded memory.

:func:`write_sample` generates the blocks of :mod:`collect_kit.synth` (each from its own
random stream) in worker processes, a chunk of blocks at a time, and appends every chunk
to one Parquet file per table. The files hold exactly the rows :func:`synth.generate`
returns for the same seed and size, whatever the chunk size or the number of workers.
Peak memory is about 1 GB per worker per 100 000 customers of chunk, plus one chunk in
the writing process: 10 M customers (about 500 M rows) fit on a laptop.

The folder it writes::

    customers.parquet ... assignments.parquet   the canonical tables
    sources.yaml                                the sources YAML that reads them
    truth/customers.parquet, truth/experiments.parquet   the ground truth, kept apart

It is written to a temporary sibling folder and renamed when complete, so a failed or
interrupted run leaves nothing where the sample is expected.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import synth
from .errors import InvalidParameterError

TABLES = ("customers", "receivables", "payments", "adjustments", "contacts", "scores",
          "assignments")  # fmt: skip
DEFAULT_CHUNK = 4 * synth.BLOCK


@dataclass(frozen=True)
class WrittenSample:
    """What :func:`write_sample` wrote: the folder, its sources YAML and rows per table."""

    folder: Path
    sources: Path
    rows: dict[str, int]


def write_sample(
    folder: str | os.PathLike,
    n_customers: int,
    seed: int = 7,
    end: str | pd.Timestamp = "2026-10-31",
    months: int = 18,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = 2,
    overwrite: bool = False,
) -> WrittenSample:
    """Generate a sample of ``n_customers`` into ``folder`` (Parquet, see the module doc).

    ``chunk_size`` (customers, a multiple of :data:`synth.BLOCK`) is what one worker
    generates at once; ``workers`` processes generate chunks while this one writes them
    (``workers=0`` generates here, one chunk at a time). An existing ``folder`` is replaced
    only with ``overwrite=True``.
    """
    folder = Path(folder)
    grid = synth.sample_grid(n_customers, end, months)
    if chunk_size < synth.BLOCK or chunk_size % synth.BLOCK:
        raise InvalidParameterError(
            f"chunk_size: must be a multiple of {synth.BLOCK:,} customers (got {chunk_size:,})"
        )
    if workers < 0:
        raise InvalidParameterError(f"workers: must be 0 or more (got {workers})")
    if folder.exists() and not overwrite:
        raise InvalidParameterError(
            f"{folder}: already exists (pass overwrite=True, or --force, to replace it)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        rows = _write_chunks(staging, n_customers, seed, grid, chunk_size // synth.BLOCK, workers)
        sources = _write_sources(staging, grid.month_ends[-1], n_customers, seed)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WrittenSample(folder=folder, sources=folder / sources.name, rows=rows)


def _chunk(n_customers: int, seed: int, grid, blocks: range) -> tuple[dict, pa.Table, list]:
    """Generate ``blocks`` (run in a worker): tables, truth customers, truth experiments."""
    parts = [synth.generate_block(n_customers, seed, grid, b) for b in blocks]
    tables = {t: pa.concat_tables([p.tables[t] for p in parts]) for t in TABLES}
    customers = pa.Table.from_pandas(
        pd.concat([p.customers for p in parts], ignore_index=True), preserve_index=False
    )
    return tables, customers, [p.experiments for p in parts]


def _write_chunks(folder: Path, n_customers: int, seed: int, grid, per_chunk: int, workers: int):
    n_blocks = synth.n_blocks(n_customers)
    chunks = [range(b, min(b + per_chunk, n_blocks)) for b in range(0, n_blocks, per_chunk)]
    (folder / "truth").mkdir()
    writers: dict[str, pq.ParquetWriter] = {}
    rows = dict.fromkeys(TABLES, 0)
    experiments: list[list[dict]] = []

    def append(name: str, path: Path, table: pa.Table) -> None:
        if name not in writers:
            writers[name] = pq.ParquetWriter(path, table.schema)
        writers[name].write_table(table.cast(writers[name].schema))

    def write(result) -> None:
        tables, customers, exp = result
        for name, table in tables.items():
            append(name, folder / f"{name}.parquet", table)
            rows[name] += table.num_rows
        append("truth", folder / "truth" / "customers.parquet", customers)
        experiments.extend(exp)

    try:
        if workers == 0:
            for blocks in chunks:
                write(_chunk(n_customers, seed, grid, blocks))
        else:
            ctx = multiprocessing.get_context("spawn")  # no DuckDB or JVM threads forked
            with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                pending: deque[cf.Future] = deque()
                for blocks in chunks:
                    pending.append(pool.submit(_chunk, n_customers, seed, grid, blocks))
                    if len(pending) > workers:  # bounded: at most one chunk waits to be written
                        write(pending.popleft().result())
                while pending:
                    write(pending.popleft().result())
    finally:
        for w in writers.values():
            w.close()
    truth = synth.experiment_truth(experiments)
    truth.to_parquet(folder / "truth" / "experiments.parquet", index=False)
    return rows


def _write_sources(folder: Path, extraction: pd.Timestamp, n_customers: int, seed: int) -> Path:
    """The packaged sample's sources YAML, reading this folder's Parquet files."""
    packaged = resources.files("collect_kit") / "configs" / "sources" / "sample.yaml"
    cfg = yaml.safe_load(packaged.read_text(encoding="utf-8"))
    cfg.pop("database", None)
    cfg["extraction_date"] = extraction.date()
    for name in TABLES:
        entry = cfg["tables"].get(name) or {}
        entry.pop("table", None)
        cfg["tables"][name] = {"path": f"{name}.parquet", **entry}
    path = folder / "sources.yaml"
    header = (
        f"# Synthetic sample: {n_customers:,} customers, seed {seed} "
        "(written by collect_kit.synth_parquet).\n"
    )
    path.write_text(header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), "utf-8")
    return path
