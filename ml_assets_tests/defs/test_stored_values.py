"""Values handed between steps (StoredValuesIOManager) stay with the run that made them, on real
Dagster runs: a run of the same asset that lands between two steps changes nothing for them."""

import dagster as dg

from ml_assets.defs.resources import StorageResource, StoredValuesIOManager


class Made(dg.Config):
    value: int


@dg.asset
def made(config: Made) -> int:
    return config.value


def test_a_step_loads_its_upstream_from_its_own_run_and_a_later_run_loads_the_latest(
    tmp_path, instance
):
    resources = {
        "io_manager": StoredValuesIOManager(storage=StorageResource(base_path=str(tmp_path)))
    }

    @dg.asset(deps=[made])
    def another_run_lands() -> None:
        """A second run of `made` (value 2) between this run's `made` (1) and `used`."""
        assert dg.materialize(
            [made],
            resources=resources,
            run_config=config(2),
            instance=dg.DagsterInstance.ephemeral(),
        ).success

    @dg.asset(deps=[another_run_lands])
    def used(made: int) -> int:
        return made

    def config(value: int) -> dict:
        return {"ops": {"made": {"config": {"value": value}}}}

    overlapped = dg.materialize(
        [made, another_run_lands, used],
        resources=resources,
        run_config=config(1),
        instance=instance,
    )
    assert overlapped.output_for_node("used") == 1  # not the other run's 2
    later = dg.materialize(
        [used, made.to_source_asset(), another_run_lands.to_source_asset()],
        resources=resources,
        instance=instance,
        selection=[used],
    )
    assert later.output_for_node("used") == 2  # the latest value, from whichever run made it
