"""Ray cluster code (sizing, profiles, lifecycle helpers). No Dagster here."""
