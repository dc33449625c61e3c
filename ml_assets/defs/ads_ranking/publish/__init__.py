"""Dagster definitions of the publish stage."""
