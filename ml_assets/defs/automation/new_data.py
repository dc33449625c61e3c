"""The new-data sensor (the ads pipeline's `new_impressions`): new daily files at the source
become new features and a new model.

Each tick lists the source's day files and looks at the ones it has not handled (a new day, or a
day whose file was rewritten). A file still changing is looked at again next tick; a file that
is half-written or does not match the schema is skipped, with the reason in the tick's log, until
it is re-delivered. The ready days become:
- one run of the pipeline's combined job (the days, then a retrain on the window ending with
  them) when they are consecutive and every other day of that window is materialized;
- otherwise one daily-job run per consecutive block, and the retrain follows on a later
  tick once all of those runs succeeded (or is left out, with the days it lacks in the log).
Run keys are built from the files' fingerprints, so the same data never triggers twice, and the
cursor (what was handled, what waits) lives in the instance, so it survives daemon restarts. A
day the pipeline's retrain schedule already ran on this file is not run again
(`one_run_per_day`).

A sensor, not a declarative automation condition: the trigger is outside Dagster (files), it
needs validation that can say why it skipped, and retraining must wait for the whole window.
An `eager()` model downstream of daily partitions would retrain after any partition update,
manual re-runs and every chunk of a backfill included.
"""

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

import dagster as dg

from ml_assets import environment
from ml_assets.defs.automation.one_run_per_day import (
    FAILED,
    RANGE_END_TAG,
    RANGE_START_TAG,
    schedule_run_since,
)
from ml_assets.defs.automation.retraining import Retraining
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.partitions import PARTITIONS_START
from ml_assets.defs.resources import ImpressionSource

# Files validated per tick: the cursor is saved only when a tick ends, so a tick must end well
# inside the daemon's timeout even when months of files land at once.
CHECKS_PER_TICK = 16


@dataclass
class LandingCursor:
    """The sensor's memory, stored as JSON in the instance."""

    handled: dict[str, str] = field(default_factory=dict)  # day -> fingerprint requested
    rejected: dict[str, str] = field(default_factory=dict)  # day -> fingerprint found unusable
    waiting_on: list[str] = field(default_factory=list)  # run keys a retrain waits for
    retrain_end: str = ""  # the end of that retrain's window

    @classmethod
    def parse(cls, text: str | None) -> "LandingCursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def knows(self, landed) -> bool:
        """Whether this file, as it is now, was handled or rejected already. A fingerprint of
        the earlier format is carried over, so an upgrade re-ingests nothing."""
        for seen in (self.handled, self.rejected):
            if seen.get(landed.date) == landed.legacy_fingerprint:
                seen[landed.date] = landed.fingerprint
            if seen.get(landed.date) == landed.fingerprint:
                return True
        return False


def consecutive_blocks(days: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for day in sorted(days):
        previous = dt.date.fromisoformat(day) - dt.timedelta(days=1)
        if blocks and blocks[-1][-1] == previous.isoformat():
            blocks[-1].append(day)
        else:
            blocks.append([day])
    return blocks


def run_key(kind: str, files: dict) -> str:
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:12]
    days = sorted(files)
    return f"{kind}:{days[0]}..{days[-1]}:{digest}"


def range_tags(retraining: Retraining, days: list[str], trigger: str) -> dict[str, str]:
    return {RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1], **retraining.tags(trigger)}


def last_complete_day() -> str:
    """Daily partitions exist for finished days only: today's file waits until tomorrow."""
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def follow_up_retrain(
    context, retraining: Retraining, cursor: LandingCursor, automation: AutomationSettings
):
    """The retrain that waits for feature runs: a run request once all of them succeeded."""
    if not cursor.waiting_on:
        return None
    statuses = {}
    for key in cursor.waiting_on:
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": key}))
        statuses[key] = runs[0].status if runs else None
    failed = [key for key, status in statuses.items() if status in FAILED or status is None]
    done = all(status == dg.DagsterRunStatus.SUCCESS for status in statuses.values())
    if not failed and not done:
        return None  # still running: look again next tick
    end, keys = cursor.retrain_end, cursor.waiting_on
    cursor.waiting_on, cursor.retrain_end = [], ""
    if failed:
        context.log.warning(
            f"no retrain: feature run(s) {', '.join(failed)} failed or never started; fix the "
            "data and re-deliver the files, or backfill the days and retrain by hand"
        )
        return None
    context.log.info(f"the features of {len(keys)} run(s) are in: retraining up to {end}")
    digest = hashlib.sha256("".join(keys).encode()).hexdigest()[:12]
    return dg.RunRequest(
        run_key=f"retrain-after:{digest}",
        job_name=retraining.train_job.name,
        run_config=automation.run_config(retraining.names(window=True), end, retraining.window_op),
        tags=retraining.tags("new-data"),
    )


def new_data_sensor(retraining: Retraining, *, name: str) -> dg.SensorDefinition:
    """The pipeline's new-data sensor, reading the file source of the `source` resource."""

    @dg.sensor(
        name=name,
        jobs=[retraining.combined_job, retraining.daily_job, retraining.train_job],
        minimum_interval_seconds=environment.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Ingests new or re-delivered daily files at a file source and retrains on "
        "the window ending with them; skips half-written or malformed files and says why.",
    )
    def sensor(
        context: dg.SensorEvaluationContext,
        source: ImpressionSource,
        automation: AutomationSettings,
    ):
        return look_at_the_source(context, retraining, source, automation)

    return sensor


def look_at_the_source(
    context, retraining: Retraining, source: ImpressionSource, automation: AutomationSettings
):
    """One tick: see the module docstring."""
    from ml_assets.ranking.landing import not_ready_reason, scan_landing, still_settling

    if source.is_synthetic:
        return dg.SkipReason(
            "the synthetic source has no landing files: the retrain schedule brings new "
            "synthetic days; configure a file source (kind parquet/csv/criteo_tsv) to use this"
        )
    spec = source.file_spec()
    cursor = LandingCursor.parse(context.cursor)
    requests = [
        r for r in [follow_up_retrain(context, retraining, cursor, automation)] if r is not None
    ]
    ready, notes = {}, []
    last_day = last_complete_day()
    checked = 0
    for landed in scan_landing(spec, PARTITIONS_START):
        fingerprint = landed.fingerprint
        if cursor.knows(landed):
            continue
        if landed.date > last_day:
            notes.append(f"{landed.date}: waits until the day is over (partition not yet open)")
            continue
        marker = spec.marker_for(landed.date)
        if marker is not None and not marker.exists():
            notes.append(f"{landed.date}: waits for its ready marker {marker.name}")
            continue
        if marker is None and still_settling(landed, automation.settle_seconds):
            notes.append(f"{landed.date}: {landed.path.name} is still changing; next tick")
            continue
        if checked == CHECKS_PER_TICK:
            notes.append(f"{landed.date}: waits for the next tick ({checked} files checked)")
            continue
        checked += 1
        taken = schedule_run_since(
            context.instance, retraining.pipeline, landed.date, landed.changed
        )
        if taken is not None:
            notes.append(f"{landed.date}: the retrain schedule's run {taken.run_id} read it")
            cursor.handled[landed.date] = fingerprint
            cursor.rejected.pop(landed.date, None)
            continue
        reason = not_ready_reason(spec, landed)
        if reason is None:
            ready[landed.date] = fingerprint
            continue
        context.log.warning(f"skipping {landed.date}, not retraining on it: {reason}")
        notes.append(f"{landed.date}: skipped: {reason}")
        cursor.rejected[landed.date] = fingerprint
    if ready:
        requests += plan_runs(context, retraining, cursor, automation, ready)
        cursor.handled.update(ready)
        for day in ready:
            cursor.rejected.pop(day, None)
    for note in notes:
        context.log.info(note)
    context.update_cursor(cursor.dump())
    if requests:
        return requests
    return dg.SkipReason("; ".join(notes) if notes else "no new or changed files at the source")


def plan_runs(
    context, retraining: Retraining, cursor: LandingCursor, automation: AutomationSettings, ready
):
    """Run requests for the ready days: see the module docstring."""
    materialized = context.instance.get_materialized_partitions(retraining.ready_day_asset.key)
    end = max([*ready, *materialized])
    missing = automation.missing_days(end, materialized | set(ready))
    blocks = consecutive_blocks(list(ready))
    outside = not any(day in automation.window(end) for day in ready)
    if len(blocks) == 1 and not missing and not outside:
        context.log.info(f"new day(s) {blocks[0][0]}..{blocks[0][-1]}: ingest and retrain")
        return [
            dg.RunRequest(
                run_key=run_key("new-data", ready),
                job_name=retraining.combined_job.name,
                run_config=automation.run_config(
                    retraining.names(daily=True, window=True), end, retraining.window_op
                ),
                tags=range_tags(retraining, blocks[0], "new-data"),
            )
        ]
    requests = [
        dg.RunRequest(
            run_key=run_key("features", {d: ready[d] for d in block}),
            job_name=retraining.daily_job.name,
            run_config=automation.run_config(retraining.names(daily=True)),
            tags=range_tags(retraining, block, "new-data"),
        )
        for block in blocks
    ]
    if outside:
        context.log.info(
            f"day(s) {', '.join(ready)} lie before the window ending {end}: ingested, no retrain"
        )
    elif missing:
        context.log.warning(
            f"no retrain yet: the window ending {end} lacks {', '.join(missing)}; it follows "
            "once those days land"
        )
    else:
        # with any earlier ones still running
        cursor.waiting_on += [r.run_key for r in requests if r.run_key]
        cursor.retrain_end = max(cursor.retrain_end, end)
    return requests
