import polars as pl
import pytest

from ml_assets.errors import DataValidationError
from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE
from ml_assets.ranking.sources import FileSourceSpec, read_file_day
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

DAY = "2026-11-02"


def write_criteo_tsv(path, rows):
    frame, _ = generate_day(SyntheticSpec(), DAY, rows)
    frame.write_csv(path, separator="\t", include_header=False, null_value="")
    return frame


def test_criteo_tsv_layout(tmp_path):
    original = write_criteo_tsv(tmp_path / f"{DAY}.tsv", 500)
    spec = FileSourceSpec(path=str(tmp_path), format="criteo_tsv", file_pattern="{date}.tsv")
    frame = read_file_day(spec, DAY)
    assert frame.columns == ["label", *CRITEO_DENSE, *CRITEO_CATEGORICAL]
    assert frame["label"].dtype == pl.Int8
    assert frame["I1"].dtype == pl.Float64 and frame["C1"].dtype == pl.String
    assert frame["label"].to_list() == original["label"].to_list()
    assert frame["I3"].null_count() == original["I3"].null_count()
    assert frame["C7"].to_list() == original["C7"].to_list()


def test_parquet_with_own_column_names(tmp_path):
    pl.DataFrame(
        {"clicked": [0, 1, 1], "price": [1.5, None, 3.0], "advertiser": ["a", "b", None]}
    ).write_parquet(tmp_path / f"{DAY}.parquet")
    spec = FileSourceSpec(
        path=str(tmp_path),
        label_column="clicked",
        dense_columns=("price",),
        categorical_columns=("advertiser",),
    )
    frame = read_file_day(spec, DAY)
    assert frame.columns == ["clicked", "price", "advertiser"]
    assert frame["clicked"].to_list() == [0, 1, 1]


def csv_spec(tmp_path):
    return FileSourceSpec(
        path=str(tmp_path),
        format="csv",
        file_pattern="{date}.csv",
        dense_columns=("I1",),
        categorical_columns=("C1", "C2"),
    )


def test_missing_file_names_partition_and_fix(tmp_path):
    with pytest.raises(DataValidationError) as error:
        read_file_day(csv_spec(tmp_path), DAY)
    assert error.value.partition == DAY
    assert "no source file" in str(error.value) and "Fix:" in str(error.value)


def test_missing_column_names_the_column(tmp_path):
    (tmp_path / f"{DAY}.csv").write_text("label,I1,C1\n1,2,x\n")
    with pytest.raises(DataValidationError) as error:
        read_file_day(csv_spec(tmp_path), DAY)
    assert error.value.column == "C2" and error.value.partition == DAY
    assert "rename the columns" in error.value.fix


@pytest.mark.parametrize(
    ("labels", "problem"),
    [(["1", "", "0"], "1 null"), (["1", "yes", "0"], "non-numeric"), (["1", "2", "0"], "outside")],
)
def test_bad_labels_are_refused(tmp_path, labels, problem):
    lines = "".join(f"{y},3,a,b\n" for y in labels)
    (tmp_path / f"{DAY}.csv").write_text("label,I1,C1,C2\n" + lines)
    with pytest.raises(DataValidationError) as error:
        read_file_day(csv_spec(tmp_path), DAY)
    assert error.value.column == "label" and problem in error.value.problem


def test_empty_partition_is_refused(tmp_path):
    (tmp_path / f"{DAY}.csv").write_text("label,I1,C1,C2\n")
    with pytest.raises(DataValidationError, match="has no rows"):
        read_file_day(csv_spec(tmp_path), DAY)


def test_non_numeric_dense_value_is_refused(tmp_path):
    (tmp_path / f"{DAY}.csv").write_text("label,I1,C1,C2\n1,abc,a,b\n")
    with pytest.raises(DataValidationError) as error:
        read_file_day(csv_spec(tmp_path), DAY)
    assert error.value.column == "I1"


def test_wrong_criteo_width(tmp_path):
    (tmp_path / f"{DAY}.tsv").write_text("1\t2\t3\n")
    spec = FileSourceSpec(path=str(tmp_path), format="criteo_tsv", file_pattern="{date}.tsv")
    with pytest.raises(DataValidationError, match="line 1 has 3 tab-separated fields"):
        read_file_day(spec, DAY)


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown file format 'xlsx'"):
        FileSourceSpec(path="/x", format="xlsx")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("/etc/{date}.csv", "inside the source `path`"),
        ("../{date}.csv", "inside the source `path`"),
        ("sub/../../{date}.csv", "inside the source `path`"),
        ("~/{date}.csv", "inside the source `path`"),
        ("data.csv", "exactly once"),
        ("{date}-{date}.csv", "exactly once"),
        ("{date.__class__}.csv", "exactly once"),
        ("{0}.csv", "exactly once"),
        ("{date!r}.csv", "exactly once"),
        ("{date", "malformed"),
    ],
)
def test_a_file_pattern_that_could_leave_the_folder_is_refused(tmp_path, pattern, problem):
    with pytest.raises(ValueError, match=problem):
        FileSourceSpec(path=str(tmp_path), format="csv", file_pattern=pattern)


def test_a_link_out_of_the_source_folder_is_refused_and_not_read(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("token-abc123\n")
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / f"{DAY}.csv").symlink_to(secret)
    with pytest.raises(DataValidationError, match="resolves to a place outside") as error:
        read_file_day(csv_spec(folder), DAY)
    assert "token-abc123" not in str(error.value)


def test_a_missing_column_error_does_not_echo_the_header(tmp_path):
    (tmp_path / f"{DAY}.csv").write_text("secret-token-xyz,other\n1,2\n")
    with pytest.raises(DataValidationError, match="lacks 4 configured column") as error:
        read_file_day(csv_spec(tmp_path), DAY)
    assert "secret-token-xyz" not in str(error.value) and "it has 2 columns" in str(error.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_dense_values_are_refused_naming_the_column(tmp_path, bad):
    pl.DataFrame(
        {"label": [0, 1], "I1": [1.0, bad], "C1": ["a", "b"], "C2": ["c", "d"]}
    ).write_parquet(tmp_path / f"{DAY}.parquet")
    spec = FileSourceSpec(
        path=str(tmp_path), dense_columns=("I1",), categorical_columns=("C1", "C2")
    )
    with pytest.raises(DataValidationError, match="1 NaN or infinite value") as error:
        read_file_day(spec, DAY)
    assert error.value.column == "I1"


def test_a_truncated_tsv_line_is_refused_with_its_line_number(tmp_path):
    write_criteo_tsv(tmp_path / "whole.tsv", 50)
    lines = (tmp_path / "whole.tsv").read_text().splitlines()
    lines[17] = "\t".join(lines[17].split("\t")[:25])  # cut short, as a half-written export
    (tmp_path / f"{DAY}.tsv").write_text("\n".join(lines) + "\n")
    spec = FileSourceSpec(path=str(tmp_path), format="criteo_tsv", file_pattern="{date}.tsv")
    with pytest.raises(DataValidationError, match="line 18 has 25 tab-separated fields"):
        read_file_day(spec, DAY)


def test_a_quote_in_a_tsv_field_is_data_not_quoting(tmp_path):
    write_criteo_tsv(tmp_path / "whole.tsv", 5)
    lines = (tmp_path / "whole.tsv").read_text().splitlines()
    fields = lines[2].split("\t")
    fields[20] = '"ab'  # an opening quote that a quoting reader would run past the tab
    lines[2] = "\t".join(fields)
    (tmp_path / f"{DAY}.tsv").write_text("\n".join(lines) + "\n")
    spec = FileSourceSpec(path=str(tmp_path), format="criteo_tsv", file_pattern="{date}.tsv")
    frame = read_file_day(spec, DAY)
    assert frame.height == 5 and frame.row(2)[20] == '"ab'
