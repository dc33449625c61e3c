"""Dagster definitions of the evaluation stage."""
