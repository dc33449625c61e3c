"""Resources every stage shares: where data lives, where it comes from, and MLflow."""

import os
import pickle
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from ml_assets import environment
from ml_assets.atomic import atomic_path
from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL, FeatureSchema
from ml_assets.storage import open_root, resolve


class StorageResource(dg.ConfigurableResource):
    """Files that outlive every Ray cluster and every run pod: partitions, vocabularies, encoded
    windows, checkpoints, models. A local folder by default; in production an S3-compatible
    bucket, which every pod reaches by URI (no shared disk)."""

    base_path: str = Field(
        default="",
        description="Root of pipeline data: a local folder, or `s3://bucket/prefix` for any "
        "S3-compatible store. Empty: `$ML_ASSETS_HOME/storage`.",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="The S3 endpoint, e.g. `http://minio.data:9000` (MinIO, SeaweedFS, Ceph). "
        "Empty: `AWS_ENDPOINT_URL`, else AWS S3.",
    )
    access_key_id: str = Field(
        default="", description="S3 access key. Empty: the AWS credential chain."
    )
    secret_access_key: str = Field(
        default="", description="S3 secret key. Empty: the AWS credential chain."
    )

    @property
    def root(self) -> Path:
        return open_root(
            self.base_path or str(environment.home() / "storage"),
            endpoint_url=self.s3_endpoint_url,
            key=self.access_key_id,
            secret=self.secret_access_key,
        )

    def path(self, location: str | Path) -> Path:
        """A file or folder another step handed over (a URI or local path), reachable with this
        storage's endpoint and credentials."""
        return resolve(location, self.root)

    def partition_dir(self, asset: str, date: str) -> Path:
        return self.root / asset / f"date={date}"

    def run_dir(self, asset: str, run_id: str) -> Path:
        """Per-run outputs: a failed run never overwrites what an earlier run produced."""
        return self.root / asset / run_id

    @property
    def checkpoint_root(self) -> Path:
        return self.root / "ray_train"


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Readers see the old file or the new one, never half of one."""
    with atomic_path(path) as temporary:
        frame.write_parquet(temporary)


class ImpressionSource(dg.ConfigurableResource):
    """Where raw impressions come from: the synthetic generator (default) or daily files."""

    kind: str = Field(
        default="synthetic",
        description="`synthetic`, or a file format: `parquet`, `csv` or `criteo_tsv` "
        "(label, I1..I13, C1..C26, tab-separated, no header).",
    )
    rows_per_day: int = Field(
        gt=0, default=100_000, description="Synthetic rows generated per day."
    )
    seed: int = Field(default=7, description="Synthetic world seed (same seed, same ground truth).")
    world: str = Field(
        default="spread",
        description="Synthetic world's structure, one of the suite the defaults are judged on "
        "(ml_assets.ranking.worlds): spread, few_signal, small_large_crosses, long_tail, "
        "ctr_0.5pct, ctr_3pct, dense_only, categorical_only.",
    )
    base_ctr: float | None = Field(
        gt=0,
        lt=1,
        default=None,
        description="Synthetic target click-through rate. Unset: the world's (25% for spread).",
    )
    path: str = Field(default="", description="Directory holding one file per day (file kinds).")
    file_pattern: str = Field(
        default="{date}.parquet",
        description="File name per day under `path`; `{date}` becomes YYYY-MM-DD.",
    )
    ready_marker: str = Field(
        default="",
        description="A file whose presence says a day is complete, with {date} once, e.g. "
        "`{date}/_SUCCESS`. Empty: a day's file counts once it stopped changing "
        "(AutomationSettings.settle_seconds).",
    )
    label_column: str = Field(default=LABEL, description="Click label column (0/1).")
    dense_columns: list[str] = Field(
        default_factory=lambda: list(CRITEO_DENSE), description="Numeric feature columns."
    )
    categorical_columns: list[str] = Field(
        default_factory=lambda: list(CRITEO_CATEGORICAL), description="Categorical id columns."
    )

    @field_validator("world")
    @classmethod
    def _known_world(cls, name: str) -> str:
        from ml_assets.ranking.worlds import world

        world(name)  # names the worlds there are, if it is not one
        return name

    @property
    def is_synthetic(self) -> bool:
        return self.kind == "synthetic"

    def synthetic_spec(self):
        from dataclasses import replace

        from ml_assets.ranking.worlds import world

        spec = replace(world(self.world).spec, seed=self.seed)
        return spec if self.base_ctr is None else replace(spec, base_ctr=self.base_ctr)

    def file_spec(self):
        from ml_assets.ranking.sources import FileSourceSpec

        if not self.path:
            raise ValueError(
                f"impression source kind {self.kind!r} needs `path`: the directory with one "
                "file per day"
            )
        return FileSourceSpec(
            path=self.path,
            format=self.kind,
            file_pattern=self.file_pattern,
            ready_marker=self.ready_marker,
            label_column=self.label_column,
            dense_columns=tuple(self.dense_columns),
            categorical_columns=tuple(self.categorical_columns),
        )

    @property
    def feature_schema(self) -> FeatureSchema:
        return self.synthetic_spec().schema if self.is_synthetic else self.file_spec().schema

    def read_day(self, date: str) -> tuple[pl.DataFrame, pl.Series | None]:
        """The day's rows in the canonical layout and, for synthetic data, the true CTR."""
        from ml_assets.ranking import sources

        if self.is_synthetic:
            return sources.read_synthetic_day(self.synthetic_spec(), date, self.rows_per_day)
        return sources.read_file_day(self.file_spec(), date), None


MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and Model Registry. Local default: SQLite under `$ML_ASSETS_HOME`."""

    tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI. Empty: `sqlite:///$ML_ASSETS_HOME/mlflow.db`.",
    )
    artifact_location: str = Field(
        default="",
        description="Artifact root for a new experiment. Empty: the server's default, or "
        "`$ML_ASSETS_HOME/mlartifacts` for the local SQLite store.",
    )

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or environment.local_mlflow_tracking_uri()

    def client(self):
        import mlflow

        # mlflow also exports these URIs as MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI. In a
        # long-lived process (a code server, `dagster dev`) the next definitions load would then
        # read one run's store as the deployment's setting, so the variables are put back.
        exported = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
        try:
            mlflow.set_tracking_uri(self.resolved_tracking_uri)
            mlflow.set_registry_uri(self.resolved_tracking_uri)
        finally:
            for name, value in exported.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        return mlflow.MlflowClient(self.resolved_tracking_uri, self.resolved_tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The experiment `name` (each pipeline has its own), created on first use."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = self.artifact_location or None
        if location is None and self.resolved_tracking_uri.startswith("sqlite:"):
            location = (environment.home() / "mlartifacts").as_uri()
        return client.create_experiment(name, artifact_location=location)


class StoredValuesIOManager(dg.ConfigurableIOManagerFactory):
    """Keeps the values assets hand each other (small dicts and URIs) under the storage root's
    `dagster/` folder, so a step in one pod loads what a step in another pod returned."""

    storage: dg.ResourceDependency[StorageResource]

    def create_io_manager(self, context) -> dg.UPathIOManager:
        from upath import UPath

        folder = self.storage.root / "dagster"
        return PickledValues(folder if isinstance(folder, UPath) else UPath(folder))


class PickledValues(dg.UPathIOManager):
    """Dagster's own UPath IO manager with pickled values, on any fsspec path.

    The path of an unpartitioned asset names no run, so two runs of one asset at once (a
    sensor's retrain beside a backfill's) would hand each other's values downstream: a publish
    would load the other run's model beside its own evaluation. Each value is therefore also
    kept under the run that made it, and a step loads its upstream from that run; an upstream
    from an earlier run loads the asset's latest value, as Dagster's own IO managers do."""

    extension = ".pickle"

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        data = pickle.dumps(obj)
        for target in (_run_copy(path, context.run_id), path):
            self.make_directory(target.parent)
            with target.open("wb") as file:
                file.write(data)

    def load_from_path(self, context: dg.InputContext, path):
        run_id = _producing_run(context)
        copy = _run_copy(path, run_id) if run_id else None
        with (copy if copy is not None and copy.exists() else path).open("rb") as file:
            return pickle.load(file)


def _run_copy(path, run_id: str):
    return path.parent / f"{path.stem}.runs" / f"{run_id}{path.suffix}"


def _producing_run(context: dg.InputContext) -> str | None:
    """The run whose step produced this input, when the input comes from a step (of this run,
    or of the run it re-executes); None for an asset loaded from whichever run made it last."""
    upstream = context.upstream_output
    try:
        return upstream.run_id if upstream is not None else None
    except dg.DagsterInvariantViolationError:
        return None
