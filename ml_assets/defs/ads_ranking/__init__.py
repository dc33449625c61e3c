"""The ads click-through ranking pipeline: its assets by stage, its jobs and its automation."""

GROUP = "ads_ranking"
OWNERS = ["team:ads-ranking"]
EXPERIMENT = "ads-ranking"  # MLflow experiment of the training runs
REGISTERED_MODEL = "ads_ctr_ranker"  # MLflow Model Registry name the pipeline publishes to
# Assets whose code defines their output set `code_version`: bump it when a change to that code
# changes what the asset holds for the same inputs, and the UI marks the asset (and what reads it)
# as changed since its last materialization.
