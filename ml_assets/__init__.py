"""ml_assets: an ads click-through ranking pipeline as Dagster software-defined assets."""
