"""Sensor memory: peak RSS of one `new_impressions` tick over a large landing file (goal: under
512 MiB at 2 GiB), and side by side on a smaller file, the tick against reading that whole day
(what a tick did before it read only the first rows; a whole 2 GiB day would need far more
memory than the machine has).

Each measurement runs in a fresh interpreter (`ru_maxrss` of a child that imported the same
modules); the imports alone are measured too.

    .venv/bin/python -m bench.sensor_memory [--gib 2] [--compare-gib 0.25] [--format criteo_tsv]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_result

DAY = "2026-11-01"

# Runs in the child: imports, then one of: nothing, a sensor tick, a whole-day read.
CHILD = """
import json, resource, sys, time
import dagster as dg
from ml_assets.defs.ads_ranking.automation import new_impressions
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.resources import ImpressionSource
from ml_assets.ranking.sources import read_file_day
what, landing, kind = sys.argv[1:4]
source = ImpressionSource(kind=kind, path=landing, file_pattern="{date}." + sys.argv[4])
began = time.perf_counter()
if what == "tick":
    with dg.instance_for_test() as instance, dg.build_sensor_context(
        instance=instance, resources={"source": source,
        "automation": AutomationSettings(settle_seconds=0)}) as context:
        result = new_impressions(context)
        outcome = type(result).__name__ if not isinstance(result, list) else f"{len(result)} runs"
elif what == "whole_day":
    outcome = f"{read_file_day(source.file_spec(), sys.argv[5]).height} rows"
else:
    outcome = "imports only"
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - began, "outcome": outcome}))
"""


def write_landing_file(path: Path, kind: str, gib: float) -> int:
    """A day file of about `gib` GiB, built by repeating one block of synthetic rows."""
    from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

    block, _ = generate_day(SyntheticSpec(), DAY, 50_000)
    target, rows = int(gib * 2**30), 0
    if kind == "criteo_tsv":
        text = block.write_csv(separator="\t", include_header=False).encode()
        with path.open("wb") as out:
            while out.tell() < target:
                out.write(text)
                rows += block.height
        return rows
    import pyarrow.parquet as pq

    table = block.to_arrow()
    with pq.ParquetWriter(path, table.schema) as writer:
        while path.stat().st_size < target or rows == 0:
            writer.write_table(table)
            rows += table.num_rows
    return rows


def measure(what: str, landing: Path, kind: str, suffix: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(landing), kind, suffix, DAY],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def landed(scratch: Path, name: str, kind: str, suffix: str, gib: float) -> tuple[Path, dict]:
    landing = scratch / name
    landing.mkdir()
    began = time.perf_counter()
    rows = write_landing_file(landing / f"{DAY}.{suffix}", kind, gib)
    size = (landing / f"{DAY}.{suffix}").stat().st_size
    print(f"{name} file: {size / 2**30:.2f} GiB, {rows:,} rows, "
          f"written in {time.perf_counter() - began:.0f}s")  # fmt: skip
    return landing, {"file_gib": round(size / 2**30, 3), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--compare-gib", type=float, default=0.25)
    parser.add_argument("--format", choices=["criteo_tsv", "parquet"], default="criteo_tsv")
    args = parser.parse_args(argv)
    suffix = "tsv" if args.format == "criteo_tsv" else "parquet"
    with tempfile.TemporaryDirectory(prefix="sensor-memory-") as scratch:
        big, big_file = landed(Path(scratch), "large", args.format, suffix, args.gib)
        small, small_file = landed(Path(scratch), "compare", args.format, suffix, args.compare_gib)
        runs = {
            "imports": measure("imports", small, args.format, suffix),
            "tick_large": measure("tick", big, args.format, suffix),
            "tick_compare": measure("tick", small, args.format, suffix),
            "whole_day_compare": measure("whole_day", small, args.format, suffix),
        }
    base = runs["imports"]["peak_mib"]
    for what, run in runs.items():
        print(f"{what:18s} peak {run['peak_mib']:7.0f} MiB (+{run['peak_mib'] - base:6.0f} over "
              f"imports) {run['seconds']:6.1f}s  {run['outcome']}")  # fmt: skip
    ratio = (runs["tick_compare"]["peak_mib"] - base) / (
        runs["whole_day_compare"]["peak_mib"] - base
    )
    print(f"on the {small_file['file_gib']} GiB file, tick / whole-day read above imports: "
          f"{ratio:.3f}")  # fmt: skip
    write_result(
        f"sensor_memory-{args.format}",
        {
            "large": big_file,
            "compare": small_file,
            "runs": runs,
            "tick_peak_mib": round(runs["tick_large"]["peak_mib"]),
            "tick_over_whole_day_above_imports": round(ratio, 4),
            "goal_tick_peak_under_512_mib": runs["tick_large"]["peak_mib"] < 512,
        },
    )


if __name__ == "__main__":
    main()
