"""Helpers that turn results into Dagster metadata a person can read at a glance."""

import base64
import numbers

import dagster as dg


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """An inline PNG in a markdown metadata entry: shows in the asset's page in the UI."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def table(rows: list[dict], columns: list[str]) -> dg.MetadataValue:
    """A table the UI renders (and sorts) as one, typed from the first row's values."""
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name, _column_type(rows[0].get(name) if rows else None))
            for name in columns
        ]
    )
    records = [dg.TableRecord({c: _cell(row.get(c)) for c in columns}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def _column_type(value) -> str:
    if isinstance(value, bool | numbers.Integral):
        return "bool" if isinstance(value, bool) else "int"
    return "float" if isinstance(value, numbers.Real) else "string"


def _cell(value):
    """TableRecord takes plain str, int, float and bool only (not numpy's scalars)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return round(float(value), 4)
    return str(value)
