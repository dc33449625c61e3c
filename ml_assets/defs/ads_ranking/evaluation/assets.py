"""model_evaluation: the trained model on a later-in-time holdout, against the known optimum."""

import time

import dagster as dg
from pydantic import Field

from ml_assets.defs.ads_ranking import GROUP, OWNERS
from ml_assets.defs.ads_ranking.features.assets import MATERIALIZE_DAYS, ad_features, features_file
from ml_assets.defs.ads_ranking.ingest.assets import TRUTH_FILE, raw_impressions, read_raw_days
from ml_assets.defs.metadata import png_markdown, table
from ml_assets.defs.resources import MlflowResource, StorageResource, write_parquet_atomically
from ml_assets.defs.window import require_partition_files

PREDICTIONS_FILE = "predictions.parquet"
HOLDOUT_RAW_FILE = "holdout_raw.parquet"  # the rows scored, for the champion's paired score


class EvaluationConfig(dg.Config):
    slice_feature: str = Field(
        default="", description="Categorical feature to slice calibration by. Empty: the first."
    )
    max_normalized_entropy: float = Field(
        gt=0,
        default=1.0,
        description="Blocking check: NE must be below this (1.0 = the base rate).",
    )
    calibration_floor: float = Field(
        gt=0, default=0.8, description="Blocking check: predicted/observed clicks at least this."
    )
    calibration_ceiling: float = Field(
        gt=0, default=1.25, description="Blocking check: predicted/observed clicks at most this."
    )
    slice_calibration_floor: float = Field(
        gt=0,
        default=0.7,
        description="Blocking check: each judged slice's calibration at least this.",
    )
    slice_calibration_ceiling: float = Field(
        gt=0,
        default=1.4,
        description="Blocking check: each judged slice's calibration at most this.",
    )
    min_holdout_clicks: int = Field(
        ge=1,
        default=100,
        description="Blocking checks: with fewer holdout clicks, NE and calibration cannot be "
        "judged; the checks block and say so, with the count and the interval.",
    )
    slice_min_clicks: int = Field(
        ge=0,
        default=200,
        description="Slices with fewer holdout clicks are reported but not judged (too noisy).",
    )
    leakage_z: float = Field(
        lt=0,
        default=-4.0,
        description="Blocking check (synthetic data): a model beating the true probabilities "
        "by more than this many standard errors has seen labels it should not have.",
    )


@dg.asset(
    # the holdout days' features to score, their raw rows (and truth) to compare with
    deps=[ad_features, raw_impressions],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"pytorch", "mlflow"},
    description=(
        "AUC, log loss, normalized entropy and calibration (overall and per slice) of the "
        "trained model on the held-out days after its training window; on synthetic data also "
        "the optimum (the true click probabilities) and the share of the gap closed. Blocking "
        "checks gate publishing."
    ),
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    ranking_model: dict,
    storage: StorageResource,
    mlflow_tracking: MlflowResource,
) -> dg.MaterializeResult:
    import numpy as np
    import polars as pl

    from ml_assets.ranking.artifacts import LoadedModel
    from ml_assets.ranking.evaluation import evaluate
    from ml_assets.ranking.tracking import log_evaluation
    from ml_assets.storage import read_parquet

    started = time.perf_counter()
    loaded = LoadedModel.load(storage.path(ranking_model["model_dir"]))
    schema = loaded.vocabulary.schema
    holdout = loaded.vocabulary.holdout_dates
    slice_feature = config.slice_feature or schema.categorical[0]
    if slice_feature not in schema.categorical:
        raise ValueError(
            f"slice_feature {slice_feature!r} is not a categorical feature; choose one of "
            f"{', '.join(schema.categorical)}"
        )
    files = {d: features_file(storage, d) for d in holdout}
    require_partition_files(files, "ad_features", MATERIALIZE_DAYS)
    features = pl.concat([read_parquet(files[d]) for d in holdout])
    probabilities = loaded.predict_features(features)
    labels = features.get_column(schema.label).to_numpy().astype(np.float64)
    truth_files = [storage.partition_dir("raw_impressions", d) / TRUTH_FILE for d in holdout]
    truth = None
    if all(f.exists() for f in truth_files):
        truth = np.concatenate([read_parquet(f).to_series().to_numpy() for f in truth_files])
    report = evaluate(labels, probabilities, features.get_column(slice_feature).to_numpy(), truth)
    run_dir = storage.run_dir("model_evaluation", context.run_id)
    predictions = run_dir / PREDICTIONS_FILE
    write_parquet_atomically(
        pl.DataFrame({"label": labels, "probability": probabilities}), predictions
    )
    # The raw rows these features came from, kept so that publishing scores the champion on
    # exactly these rows, whatever is re-ingested meanwhile.
    raw = read_raw_days(storage, holdout)
    if raw.height != features.height or not np.array_equal(
        raw.get_column(schema.label).to_numpy(), labels
    ):
        raise dg.Failure(
            description=f"raw_impressions and ad_features of {', '.join(holdout)} hold different "
            "rows (a day was re-ingested after its features were built); re-materialize "
            "ad_features for those days, then model_evaluation",
        )
    holdout_raw = run_dir / HOLDOUT_RAW_FILE
    write_parquet_atomically(raw, holdout_raw)
    summary = report.summary()
    # Sets the tracking URI for this process: under the multiprocess executor this step runs in
    # a fresh process, where MLflow would otherwise write to ./mlflow.db.
    mlflow_tracking.client()
    log_evaluation(ranking_model["mlflow_run_id"], summary, report.plots)
    slices = [{"value": k, **v} for k, v in report.calibration_by_slice.items()]
    metadata = {f: dg.MetadataValue.float(v) for f, v in summary.items()}
    return dg.MaterializeResult(
        value={
            **summary,
            "holdout_dates": holdout,
            "predictions": str(predictions),
            "holdout_raw": str(holdout_raw),
            "train_dates": loaded.vocabulary.train_dates,
            "thresholds": config.model_dump(),
            "slice_feature": slice_feature,
            "calibration_by_slice": report.calibration_by_slice,
            "has_truth": truth is not None,
            "holdout_rows": int(labels.size),
            "holdout_clicks": int(labels.sum()),
        },
        metadata={
            **metadata,
            "holdout_dates": f"{holdout[0]}..{holdout[-1]}",
            "mlflow_run_id": ranking_model["mlflow_run_id"],
            "roc_curve": png_markdown(report.plots["roc"], "ROC"),
            "calibration_curve": png_markdown(report.plots["calibration"], "calibration"),
            f"calibration_by_{slice_feature}": table(
                slices, ["value", "rows", "clicks", "calibration"]
            ),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )


def _result(passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=passed, description=description, metadata=metadata)


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="The model predicts clicks better than the base rate (NE below the threshold).",
)
def beats_base_rate(model_evaluation: dict) -> dg.AssetCheckResult:
    ne = model_evaluation["model_normalized_entropy"]
    limit = model_evaluation["thresholds"]["max_normalized_entropy"]
    if (too_few := too_few_clicks(model_evaluation)) is not None:
        return _result(False, f"{too_few}; NE {ne:.4f} is noise", normalized_entropy=ne)
    return _result(ne < limit, f"NE {ne:.4f} vs limit {limit}", normalized_entropy=ne)


def too_few_clicks(model_evaluation: dict) -> str | None:
    """Why the holdout cannot support a verdict on NE or calibration, or None."""
    clicks = model_evaluation.get("holdout_clicks")  # absent in evaluations made before
    least = model_evaluation["thresholds"].get("min_holdout_clicks", 1)
    if clicks is None or clicks >= least:
        return None
    return (
        f"only {clicks} click(s) in the holdout's {model_evaluation['holdout_rows']} rows, fewer "
        f"than the {least} a verdict needs: add holdout days or wait for more data"
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="Predicted clicks over observed clicks within the sanity band.",
)
def calibrated(model_evaluation: dict) -> dg.AssetCheckResult:
    from ml_assets.ranking.metrics import calibration_interval

    value = model_evaluation["model_calibration"]
    low = model_evaluation["thresholds"]["calibration_floor"]
    high = model_evaluation["thresholds"]["calibration_ceiling"]
    if (too_few := too_few_clicks(model_evaluation)) is not None:
        lower, upper = calibration_interval(value, model_evaluation["holdout_clicks"])
        return _result(
            False,
            f"{too_few}; calibration {value:.4f}, and from the click count alone anything in "
            f"[{lower:.2f}, {upper:.2f}] (95%)",
            calibration=value,
        )
    return _result(
        low <= value <= high, f"calibration {value:.4f} vs [{low}, {high}]", calibration=value
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="Calibration per slice of the configured categorical feature: no slice with "
    "enough clicks to judge is far off (a model right on average can be wrong per segment).",
)
def calibrated_per_slice(model_evaluation: dict) -> dg.AssetCheckResult:
    from ml_assets.ranking.metrics import miscalibrated_slices

    thresholds = model_evaluation["thresholds"]
    low, high = thresholds["slice_calibration_floor"], thresholds["slice_calibration_ceiling"]
    bad, judged = miscalibrated_slices(
        model_evaluation["calibration_by_slice"], low, high, thresholds["slice_min_clicks"]
    )
    feature = model_evaluation["slice_feature"]
    listed = ", ".join(f"{feature}={k}: {v:.3f}" for k, v in list(bad.items())[:5])
    return _result(
        not bad,
        f"{len(bad)} of {judged} judged {feature} slices outside [{low}, {high}]"
        + (f": {listed}" if bad else ""),
        judged_slices=judged,
        miscalibrated_slices=len(bad),
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="On synthetic data, the model does not beat the true probabilities beyond "
    "noise (that would mean label leakage); holdout days come after the training days.",
)
def no_leakage(model_evaluation: dict) -> dg.AssetCheckResult:
    later = min(model_evaluation["holdout_dates"]) > max(model_evaluation["train_dates"])
    if not later:
        return _result(False, "holdout days overlap or precede the training days")
    if not model_evaluation["has_truth"]:
        return _result(True, "holdout is later than training; no ground truth to compare with")
    z = model_evaluation["leakage_z"]
    limit = model_evaluation["thresholds"]["leakage_z"]
    return _result(
        z > limit,
        f"log-loss difference to the optimum: z = {z:.2f} (alarm below {limit})",
        leakage_z=z,
    )
