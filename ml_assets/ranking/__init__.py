"""Pure ML code for the ads ranking model: data, features, model, loop, metrics. No Dagster here."""
