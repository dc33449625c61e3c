"""Dagster definitions of the training stage."""
