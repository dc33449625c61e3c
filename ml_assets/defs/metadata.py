"""Helpers that turn results into Dagster metadata a person can read at a glance."""

import base64

import dagster as dg

GROUP = "ads_ranking"


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """An inline PNG in a markdown metadata entry: shows in the asset's page in the UI."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def table_markdown(rows: list[dict], columns: list[str]) -> dg.MetadataValue:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |\n" for row in rows)
    return dg.MetadataValue.md(header + body)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
