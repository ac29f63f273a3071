"""The sample written to Parquet in chunks: the same rows as in memory, whatever the chunking."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from collect_kit import schema, sources, synth, synth_parquet
from collect_kit.cli import app
from collect_kit.errors import InvalidParameterError

N = 2 * synth.BLOCK + 7  # three blocks, the last one of 7 customers
SEED = 3


@pytest.fixture(scope="module")
def in_memory() -> synth.Sample:
    return synth.generate(N, seed=SEED)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[int, synth_parquet.WrittenSample]:
    root = tmp_path_factory.mktemp("parquet")
    return {
        # one block per chunk, generated here; two blocks per chunk in two worker processes
        synth.BLOCK: synth_parquet.write_sample(
            root / "a", N, SEED, chunk_size=synth.BLOCK, workers=0
        ),
        2 * synth.BLOCK: synth_parquet.write_sample(
            root / "b", N, SEED, chunk_size=2 * synth.BLOCK, workers=2
        ),
    }


def test_every_chunk_size_writes_exactly_the_in_memory_sample(written, in_memory):
    for chunk, w in written.items():
        for name, expected in in_memory.tables.items():
            got = pq.read_table(w.folder / f"{name}.parquet")
            assert got.equals(expected), (chunk, name)
            assert w.rows[name] == expected.num_rows
        # one row group per chunk at least: the files were appended chunk by chunk
        groups = pq.ParquetFile(w.folder / "receivables.parquet").num_row_groups
        assert groups >= synth.n_blocks(N) * synth.BLOCK // chunk


def test_ids_are_unique_across_blocks_and_keep_their_format(in_memory):
    for name, table in in_memory.tables.items():
        key = list(schema.TABLES[name].key)
        frame = table.select(key).to_pandas()
        assert not frame.duplicated().any(), name
    ids = in_memory.frame("customers").customer_id
    assert ids.str.fullmatch(r"CU\d{7}[A-Z]{2}").all()
    assert ids.iloc[synth.BLOCK].startswith(f"CU{synth.BLOCK:07d}")
    assert in_memory.frame("receivables").receivable_id.str.fullmatch(r"RC\d{9}").all()
    assert in_memory.frame("adjustments").adjustment_id.str.fullmatch(r"AJ\d{8}").all()


def test_blocks_draw_from_their_own_streams(in_memory):
    """Block 1 is not a copy of block 0, and a one-block sample is the first block itself."""
    c = in_memory.frame("customers")
    first, second = c.iloc[: synth.BLOCK], c.iloc[synth.BLOCK : 2 * synth.BLOCK]
    assert (first.region.to_numpy() != second.region.to_numpy()).mean() > 0.3
    one_block = synth.generate(synth.BLOCK, seed=SEED).tables["customers"]
    assert one_block.equals(in_memory.tables["customers"].slice(0, synth.BLOCK))


def test_truth_is_combined_over_blocks(written, in_memory):
    folder = written[synth.BLOCK].folder
    exp = pd.read_parquet(folder / "truth" / "experiments.parquet")
    pd.testing.assert_frame_equal(exp, in_memory.truth.experiments, check_dtype=False)
    # the combined lift is the customer-weighted mean of the blocks' lifts
    blocks = [synth.generate_block(N, SEED, synth.sample_grid(N, "2026-10-31", 18), b)
              for b in range(synth.n_blocks(N))]  # fmt: skip
    rows = pd.DataFrame([r for b in blocks for r in b.experiments])
    g = rows.groupby(["experiment_id", "segment"], sort=False)[
        ["lift_sum", "n_champion", "n_challenger"]
    ].sum()
    expected = g.lift_sum / (g.n_champion + g.n_challenger)
    got = exp.set_index(["experiment_id", "segment"]).true_lift
    assert (got.loc[expected.index] - expected).abs().max() < 1e-12
    customers = pd.read_parquet(folder / "truth" / "customers.parquet")
    pd.testing.assert_frame_equal(customers, in_memory.truth.customers, check_dtype=False)


def test_written_sources_yaml_loads_and_validates(written):
    portfolio = sources.load(written[synth.BLOCK].sources)
    assert portfolio.report.ok
    assert int(portfolio.tables["customers"].count().execute()) == N
    portfolio.close()


def test_bad_parameters_and_existing_folder(tmp_path):
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        synth_parquet.write_sample(tmp_path / "x", 100, chunk_size=30_000)
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidParameterError, match="already exists"):
        synth_parquet.write_sample(tmp_path / "taken", 100)
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "taken"), "--customers", "100"])
    assert result.exit_code == 2 and "already exists" in result.output


def test_a_failed_run_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synth.generate_block

    def fails_on_block_1(n, seed, grid, block):
        if block == 1:
            raise OSError("disk full")
        return real(n, seed, grid, block)

    monkeypatch.setattr(synth, "generate_block", fails_on_block_1)
    with pytest.raises(OSError, match="disk full"):
        synth_parquet.write_sample(tmp_path / "s", N, chunk_size=synth.BLOCK, workers=0)
    assert list(tmp_path.iterdir()) == []
