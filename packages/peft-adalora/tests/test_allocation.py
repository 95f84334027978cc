"""A whole AdaLoRA schedule on the tiny Llama: ranks shrink to the budget, and the pruned adapter saves and loads."""

from __future__ import annotations

import copy
import json

import torch
from _adalora_helpers import SCHEDULE, input_ids, logits, tiny_llama
from safetensors.torch import load_file

import peft_core
from peft_adalora import SVDLinear

MODULES = [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]


def test_ranks_shrink_to_the_target_budget(trained_ours):
    model, kept = trained_ours
    alloc = model.base_model.rankallocator
    init_total, target_total = SCHEDULE["init_r"] * len(MODULES), SCHEDULE["target_r"] * len(MODULES)
    assert (alloc.init_bgt, alloc.target_bgt) == (init_total, target_total)
    final_step = SCHEDULE["total_step"] - SCHEDULE["tfinal"]
    assert kept[: SCHEDULE["tinit"] + 1] == [None] * (SCHEDULE["tinit"] + 1)  # warm-up: nothing pruned
    pruning = kept[SCHEDULE["tinit"] + 1 :]
    assert pruning[0] < init_total
    assert all(a >= b for a, b in zip(pruning, pruning[1:])), kept  # the budget only shrinks
    for step in range(SCHEDULE["tinit"] + 1, final_step):
        budget, masked = alloc.budget_schedule(step)
        if masked:
            assert kept[step] == budget, (step, kept)
    assert kept[final_step:] == [target_total] * (SCHEDULE["total_step"] - final_step)
    assert len(set(kept[SCHEDULE["tinit"] + 1 :])) > 3  # several allocations happened on the way


def test_final_rank_pattern_is_stored_and_applied(trained_ours):
    model, _ = trained_ours
    pattern = model.peft_config["default"].rank_pattern
    assert sorted(pattern) == sorted(f"{m}.lora_E" for m in MODULES)
    assert all(len(mask) == SCHEDULE["init_r"] for mask in pattern.values())
    assert sum(sum(mask) for mask in pattern.values()) == SCHEDULE["target_r"] * len(MODULES)
    inner = model.base_model.model
    for module in MODULES:
        layer = inner.get_submodule(module)
        assert isinstance(layer, SVDLinear)
        e = layer.lora_E["default"].detach().view(-1)
        mask = torch.tensor(pattern[f"{module}.lora_E"])
        assert torch.all(e[~mask] == 0)
        assert layer.lora_A["default"].shape[0] == SCHEDULE["init_r"]  # training keeps the full size


def test_final_phase_keeps_pruned_ranks_at_zero(trained_ours):
    model, _ = trained_ours
    model = copy.deepcopy(model)
    pattern = model.peft_config["default"].rank_pattern
    key = next(k for k, mask in pattern.items() if not all(mask))
    layer = model.base_model.model.get_submodule(key[: -len(".lora_E")])
    pruned = torch.tensor(pattern[key]).logical_not()
    with torch.no_grad():
        layer.lora_E["default"][pruned] = 1.0
    model.base_model.update_and_allocate(SCHEDULE["total_step"] - 1)
    assert torch.all(layer.lora_E["default"].detach()[pruned] == 0)
    assert model.peft_config["default"].rank_pattern == pattern


def test_pruned_adapter_is_saved_cut_and_loads_cut(trained_ours, tmp_path):
    model, _ = trained_ours
    model.save_pretrained(tmp_path)
    pattern = model.peft_config["default"].rank_pattern
    with open(tmp_path / "adapter_config.json", encoding="utf-8") as fh:
        saved = json.load(fh)
    assert saved["rank_pattern"] == pattern
    state = load_file(tmp_path / "adapter_model.safetensors")
    assert not any("ranknum" in k for k in state)
    for module in MODULES:
        rank = sum(pattern[f"{module}.lora_E"])
        prefix = f"base_model.model.{module}"
        out = model.base_model.model.get_submodule(module).out_features
        assert state[f"{prefix}.lora_A"].shape == (rank, 32)
        assert state[f"{prefix}.lora_E"].shape == (rank, 1)
        assert state[f"{prefix}.lora_B"].shape == (out, rank)
        live = model.base_model.model.get_submodule(module)
        mask = torch.tensor(pattern[f"{module}.lora_E"])
        assert torch.equal(state[f"{prefix}.lora_A"], live.lora_A["default"].detach()[mask])
        assert torch.equal(state[f"{prefix}.lora_B"], live.lora_B["default"].detach()[:, mask])

    ids = input_ids()
    loaded = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path)
    lazy = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path, low_cpu_mem_usage=True)
    for module in MODULES:
        layer = loaded.base_model.model.get_submodule(module)
        assert layer.r["default"] == sum(pattern[f"{module}.lora_E"])
        assert float(layer.ranknum["default"]) == SCHEDULE["init_r"]  # the scaling keeps dividing by init_r
    expected = logits(model, ids)
    torch.testing.assert_close(logits(loaded, ids), expected, atol=1e-6, rtol=1e-6)
    assert torch.equal(logits(lazy, ids), logits(loaded, ids))
    assert not torch.allclose(expected, logits(tiny_llama(), ids))

    loaded.load_adapter(tmp_path, "second")  # a pruned adapter added to a model that has one
    loaded.set_adapter("second")
    assert torch.equal(logits(loaded, ids), logits(lazy, ids))
    loaded.set_adapter("default")

    again = tmp_path / "again"
    loaded.save_pretrained(again, selected_adapters=["default"])  # already cut: saved as it is
    state_again = load_file(again / "adapter_model.safetensors")
    assert state_again.keys() == state.keys() and all(torch.equal(state[k], state_again[k]) for k in state)
