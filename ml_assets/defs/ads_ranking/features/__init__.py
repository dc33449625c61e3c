"""Dagster definitions of the features stage."""
