"""Where raw impressions come from: the synthetic generator or files per day, chosen by config.

Every source yields the canonical layout: the label as Int8 (0/1), dense columns as Float64 and
categorical columns as String, named as the FeatureSchema says. Validation happens here, at
ingest, so bad data fails the first asset with a message that names the partition and column.
"""

import re
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import polars as pl

from ml_assets.errors import DataValidationError
from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL, FeatureSchema
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

FILE_FORMATS = ("parquet", "csv", "criteo_tsv")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_file_pattern(pattern: str) -> None:
    """A day's file name: relative, inside the source folder, with `{date}` exactly once and no
    other replacement field (`str.format` fields could read attributes of the date)."""
    try:
        fields = [
            field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None
        ]
    except ValueError as error:
        raise ValueError(f"file_pattern {pattern!r} is malformed ({error})") from None
    if fields != ["date"] or "{date}" not in pattern:
        raise ValueError(
            f"file_pattern {pattern!r} must contain {{date}} exactly once and no other "
            "{...} field, e.g. '{date}.parquet' or 'day={date}/part-0.parquet'"
        )
    parts = PurePosixPath(pattern).parts
    if pattern.startswith(("/", "~")) or "\\" in pattern or ".." in parts:
        raise ValueError(
            f"file_pattern {pattern!r} must name a file inside the source `path`: a relative "
            "pattern without '..', '~' or a leading '/'"
        )


@dataclass(frozen=True)
class FileSourceSpec:
    """Daily files under `path`, one per date, e.g. `{date}.parquet` -> 2026-11-02.parquet."""

    path: str
    format: str = "parquet"
    file_pattern: str = "{date}.parquet"
    label_column: str = LABEL
    dense_columns: tuple[str, ...] = CRITEO_DENSE
    categorical_columns: tuple[str, ...] = CRITEO_CATEGORICAL
    # A file whose presence says the day's file is complete (`{date}/_SUCCESS`); empty: the
    # file counts as complete once it stopped changing.
    ready_marker: str = ""

    def __post_init__(self):
        if self.format not in FILE_FORMATS:
            raise ValueError(
                f"unknown file format {self.format!r}; choose one of {', '.join(FILE_FORMATS)}"
            )
        check_file_pattern(self.file_pattern)
        if self.ready_marker:
            check_file_pattern(self.ready_marker)

    @property
    def schema(self) -> FeatureSchema:
        if self.format == "criteo_tsv":
            return FeatureSchema()
        return FeatureSchema(
            dense=self.dense_columns, categorical=self.categorical_columns, label=self.label_column
        )

    def file_for(self, date: str) -> Path:
        """The day's file; refuses a date that is no day and a file that resolves (through a
        symbolic link) outside `path`."""
        return self._inside(self.file_pattern, date)

    def marker_for(self, date: str) -> Path | None:
        return self._inside(self.ready_marker, date) if self.ready_marker else None

    def _inside(self, pattern: str, date: str) -> Path:
        if not DAY.fullmatch(date):
            raise ValueError(f"{date!r} is not a day (YYYY-MM-DD)")
        root = Path(self.path)
        file = root / pattern.replace("{date}", date)
        if not file.resolve().is_relative_to(root.resolve()):
            raise DataValidationError(
                partition=date,
                column=None,
                problem=f"the day's file {file} resolves to a place outside {root}",
                fix="deliver the file itself into the source folder, not a link that leads out",
            )
        return file


def read_file_day(spec: FileSourceSpec, date: str, max_rows: int | None = None) -> pl.DataFrame:
    """The day's rows, validated and cast; only the first `max_rows` when given (a readiness
    check, which must not hold a whole day in memory)."""
    file = spec.file_for(date)
    if not file.exists():
        raise DataValidationError(
            partition=date,
            column=None,
            problem=f"no source file {file} for this day",
            fix=(
                f"put the day's file at {file} (pattern {spec.file_pattern!r} under {spec.path}), "
                "or materialize only dates that have data"
            ),
        )
    schema = spec.schema
    if spec.format == "criteo_tsv":
        frame = read_criteo_tsv(file, schema, date, max_rows)
    else:
        try:
            if spec.format == "parquet":  # the footer says which row groups hold the rows
                frame = pl.read_parquet(file, n_rows=max_rows)
            else:  # csv: all String; cast below, strictly
                lines = None if max_rows is None else max_rows + 1  # and the header
                frame = pl.read_csv(text_head(file, lines), infer_schema=False)
        except (pl.exceptions.PolarsError, OSError) as error:
            # The reader's message can quote the file; only its kind is passed on.
            raise DataValidationError(
                partition=date,
                column=None,
                problem=f"{file} cannot be read as {spec.format} ({type(error).__name__}): "
                "half-written or corrupt",
                fix=f"re-deliver the day whole, as {spec.format}",
            ) from None
    return to_canonical(frame, schema, partition=date, origin=str(file))


def text_head(file: Path, lines: int | None) -> Path | bytes:
    """The file, or only its first `lines` lines: the CSV reader would otherwise map and scan
    the whole file to split it into chunks, however few rows it is asked for."""
    if lines is None:
        return file
    with file.open("rb") as handle:
        return b"".join(handle.readline() for _ in range(lines))


def read_criteo_tsv(
    file: Path, schema: FeatureSchema, date: str, max_rows: int | None = None
) -> pl.DataFrame:
    """Criteo's layout: tab-separated, no header, label, 13 integer, 26 categorical columns.
    Every line must have exactly that many fields: a truncated or shifted line is an error that
    names the line, not a row padded with nulls. No quoting: a `"` is data."""
    expected = len(schema.columns)
    source = text_head(file, max_rows)
    try:
        lines = pl.read_csv(
            source, has_header=False, separator="\x00", quote_char=None, new_columns=["line"],
            infer_schema=False, schema={"line": pl.String},
        ).get_column("line")  # fmt: skip
        if lines.is_empty():
            raise pl.exceptions.NoDataError("no lines")
        fields = lines.str.count_matches("\t", literal=True) + 1
        bad = (fields != expected).arg_true()
        if len(bad):
            first = int(bad[0])
            raise DataValidationError(
                partition=date,
                column=None,
                problem=(
                    f"{file} line {first + 1} has {fields[first]} tab-separated fields, and "
                    f"{len(bad)} line(s) in all differ from the Criteo layout's {expected} "
                    "(label, I1..I13, C1..C26)"
                ),
                fix="re-export the day whole; a truncated or shifted line cannot be repaired "
                "here. For another layout use format 'csv' with named columns",
            )
        return pl.read_csv(
            source, separator="\t", has_header=False, quote_char=None, infer_schema=False,
            new_columns=list(schema.columns),
        )  # fmt: skip
    except pl.exceptions.PolarsError as error:
        raise DataValidationError(
            partition=date,
            column=None,
            problem=f"{file} cannot be read as lines of text ({type(error).__name__})",
            fix="deliver the day as UTF-8 text, tab-separated, one impression per line",
        ) from None


def to_canonical(
    frame: pl.DataFrame, schema: FeatureSchema, *, partition: str, origin: str
) -> pl.DataFrame:
    """Check the columns and labels, then cast to the canonical types."""
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            partition=partition,
            column=missing[0],
            # Only configured names: a header line is file content, and is not echoed.
            problem=(
                f"{origin} lacks {len(missing)} configured column(s): {', '.join(missing[:8])}"
                f"{' ...' if len(missing) > 8 else ''} (it has {frame.width} columns)"
            ),
            fix="rename the columns in the file, or set label/dense/categorical column names in "
            "the source config to match it",
        )
    if frame.height == 0:
        raise DataValidationError(
            partition=partition,
            column=None,
            problem=f"{origin} has no rows",
            fix="re-export the day's data; an empty day cannot be trained or evaluated on",
        )
    label = frame.get_column(schema.label)
    numeric = label.cast(pl.Float64, strict=False)
    nulls = int(label.null_count())
    unparsable = int(numeric.null_count()) - nulls
    if nulls or unparsable:
        raise DataValidationError(
            partition=partition,
            column=schema.label,
            problem=f"{nulls} null and {unparsable} non-numeric label(s) in {origin}",
            fix="every impression needs a 0/1 click label; drop or repair those rows upstream",
        )
    bad = numeric.filter(~numeric.is_in([0.0, 1.0]))
    if len(bad):
        raise DataValidationError(
            partition=partition,
            column=schema.label,
            problem=(
                f"{len(bad)} label(s) outside {{0, 1}} in {origin}, "
                f"e.g. {bad.unique().head(3).to_list()}"
            ),
            fix="labels must be click indicators 0 or 1; map the source's values to 0/1",
        )
    casts = [numeric.cast(pl.Int8).alias(schema.label)]
    for name in schema.dense:
        column = frame.get_column(name)
        as_float = column.cast(pl.Float64, strict=False)
        unparsable = int(as_float.null_count() - column.null_count())
        if unparsable:
            raise DataValidationError(
                partition=partition,
                column=name,
                problem=f"{unparsable} non-numeric value(s) in a dense column of {origin}",
                fix="dense features must be numbers (empty for missing); list the column under "
                "categorical_columns if it is an id",
            )
        non_finite = int((~as_float.is_finite()).sum())
        if non_finite:
            raise DataValidationError(
                partition=partition,
                column=name,
                problem=f"{non_finite} NaN or infinite value(s) in a dense column of {origin}",
                fix="write a missing value as empty/null, not NaN; NaN or infinity in one row "
                "would make the column's mean and spread NaN, and with them every encoded row",
            )
        casts.append(as_float.alias(name))
    casts += [frame.get_column(name).cast(pl.String).alias(name) for name in schema.categorical]
    return pl.DataFrame(casts)


def read_synthetic_day(spec: SyntheticSpec, date: str, rows: int) -> tuple[pl.DataFrame, pl.Series]:
    frame, truth = generate_day(spec, date, rows)
    return to_canonical(frame, spec.schema, partition=date, origin="synthetic generator"), truth
