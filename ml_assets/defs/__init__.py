"""Dagster objects of the code location, by pipeline stage. Heavy libraries load lazily."""
