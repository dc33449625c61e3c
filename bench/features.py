"""ad_features throughput: the polars transform vs a straightforward pandas one, same 1M rows.

Both read the same raw Parquet day, apply the same transform (log1p of the non-negative part
with nulls kept for dense columns, a missing token for categorical nulls) and write Parquet.
Run: .venv/bin/python -m bench.features [--rows 1000000] [--repeats 3]
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from bench.common import write_result
from ml_assets.ranking.features import transform
from ml_assets.ranking.schema import MISSING_TOKEN
from ml_assets.ranking.sources import read_synthetic_day
from ml_assets.ranking.synthetic import SyntheticSpec


def polars_path(raw_file: Path, out: Path, schema) -> int:
    frame = transform(pl.scan_parquet(raw_file), schema)
    frame.write_parquet(out)
    return frame.height


def pandas_path(raw_file: Path, out: Path, schema) -> int:
    frame = pd.read_parquet(raw_file)
    result = pd.DataFrame({schema.label: frame[schema.label].astype("float32")})
    for name in schema.dense:
        result[name] = np.log1p(frame[name].clip(lower=0)).astype("float32")  # NaN stays
    for name in schema.categorical:
        result[name] = frame[name].fillna(MISSING_TOKEN)
    result.to_parquet(out)
    return len(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = SyntheticSpec()
    with tempfile.TemporaryDirectory() as directory:
        raw_file = Path(directory) / "raw.parquet"
        raw, _ = read_synthetic_day(spec, "2026-11-01", args.rows)
        raw.write_parquet(raw_file)
        timings: dict[str, list[float]] = {"polars": [], "pandas": []}
        # Interleaved, so both see the same machine load (this machine is shared and noisy).
        for _ in range(args.repeats):
            for name, run in (("polars", polars_path), ("pandas", pandas_path)):
                out = Path(directory) / f"{name}.parquet"
                started = time.perf_counter()
                rows = run(raw_file, out, spec.schema)
                timings[name].append(time.perf_counter() - started)
                assert rows == args.rows
        a = pl.read_parquet(Path(directory) / "polars.parquet")
        b = pl.from_pandas(pd.read_parquet(Path(directory) / "pandas.parquet"))
        assert a.columns == b.columns
        assert np.allclose(a["I5"].to_numpy(), b["I5"].to_numpy(), equal_nan=True)
        assert a["C3"].to_list() == b["C3"].to_list()
    best = {k: min(v) for k, v in timings.items()}
    rows_per_s = {k: args.rows / v for k, v in best.items()}
    ratio = rows_per_s["polars"] / rows_per_s["pandas"]
    for name in best:
        print(f"{name:7s} best {best[name]:.2f}s  {rows_per_s[name]:>12,.0f} rows/s")
    print(f"polars / pandas = {ratio:.2f}x  (goal >= 3x)")
    write_result(
        "features",
        {
            "rows": args.rows,
            "repeats": args.repeats,
            "seconds": timings,
            "rows_per_second": rows_per_s,
            "ratio_polars_over_pandas": ratio,
            "goal": ">= 3x",
            "goal_met": bool(math.isfinite(ratio) and ratio >= 3),
        },
    )


if __name__ == "__main__":
    main()
