"""Config numbers out of their range are refused where the config is built, naming the field."""

import pydantic
import pytest

from ml_assets.defs.ads_ranking.publish.assets import PromotionConfig
from ml_assets.defs.ads_ranking.training.assets import TrainingConfig
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.defs.resources import ImpressionSource


@pytest.mark.parametrize(
    ("config", "values"),
    [
        (TrainingConfig, {"epochs": 0}),
        (TrainingConfig, {"learning_rate": -1e-3}),
        (TrainingConfig, {"data_cpu_share": 1.5}),
        (TrainingConfig, {"feature_gate_penalty": -1.0}),
        (ImpressionSource, {"rows_per_day": 0}),
        (ImpressionSource, {"base_ctr": 1.0}),
        (PromotionConfig, {"max_auc_drop": -0.1}),
        (AutomationSettings, {"holdout_days": 0}),
        (KubeRayEphemeralCluster, {"timeout": 0}),
        (KubeRayEphemeralCluster, {"unschedulable_timeout": -1}),
    ],
)
def test_an_out_of_range_number_is_refused_naming_the_field(config, values):
    with pytest.raises(pydantic.ValidationError) as refused:
        config(**values)
    (field,) = values
    assert field in str(refused.value)


def test_the_defaults_are_in_range():
    for config in (TrainingConfig, ImpressionSource, PromotionConfig, AutomationSettings):
        config()


def test_an_unknown_synthetic_world_is_refused_naming_the_worlds():
    with pytest.raises(pydantic.ValidationError) as refused:
        ImpressionSource(world="few_signals")
    assert "unknown world 'few_signals'; choose one of spread, few_signal" in str(refused.value)
