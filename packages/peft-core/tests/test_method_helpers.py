"""Small core helpers methods share: per-group mixed batches and the load-time remap hook."""

from __future__ import annotations

import pytest
import torch

from peft_core import AdapterLoadError, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft_core.tuners.mixed_batch import BatchPlan, run_per_group


def test_run_per_group_routes_rows():
    plan = BatchPlan.from_names(["a", "__base__", "a", "b", "zzz"])
    x = torch.arange(5.0).unsqueeze(1)
    offsets = {"a": 100.0, "b": 200.0}

    def run(rows, names):
        return rows + (offsets[names[0]] if names else 0.0)

    out = run_per_group(plan, x, run, held={"a", "b"})
    assert out.squeeze(1).tolist() == [100.0, 1.0, 102.0, 203.0, 4.0]


def test_remap_hook_sees_the_file_before_matching(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    state = {k.replace("toy_A", "old_A"): v for k, v in get_peft_model_state_dict(model).items()}
    with pytest.raises(AdapterLoadError):
        set_peft_model_state_dict(model, state)

    def remap(adapter_name, incoming):
        return {k.replace("old_A", "toy_A"): v for k, v in incoming.items()}

    model.base_model.remap_state_dict_for_load = remap
    set_peft_model_state_dict(model, state)


def test_move_adapter_to_base_device_keeps_dtype(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    layer = model.base_model.model.lin0
    layer.toy_A["default"].to(torch.float64)
    layer.move_adapter_to_base_device("default")
    assert layer.toy_A["default"].weight.dtype == torch.float64
