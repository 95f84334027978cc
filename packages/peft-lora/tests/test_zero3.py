"""Saving parameters that DeepSpeed ZeRO-3 partitioned (without gathering) is refused before any write.

DeepSpeed itself is not installed in the test environment: the test builds what ZeRO-3 leaves on a
rank after partitioning, an empty local tensor plus the full shape in `ds_shape`, on a tiny Llama.
"""

from __future__ import annotations

import peft_core
import pytest
import torch
from _lora_test_models import tiny_llama
from peft_lora import LoraConfig


def _model():
    return peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"]))


def _partitioned(param):
    full = tuple(param.shape)
    param.data = torch.empty(0)
    param.ds_shape = torch.Size(full)  # as deepspeed.zero.Init leaves a partitioned parameter


def _flattened(param):
    param.data = param.data.reshape(-1)  # 1-D: a flattened FSDP1 shard


@pytest.mark.parametrize(
    ("layer", "factor", "shard", "message"),
    [(0, "lora_A", _partitioned, "GatheredParameters"), (1, "lora_B", _flattened, "not gathered")],
    ids=["zero3-partition", "flat-fsdp1-shard"],
)
def test_sharded_lora_factors_are_refused_with_the_recipe(tmp_path, layer, factor, shard, message):
    model = _model()
    shard(getattr(model.base_model.model.model.layers[layer].self_attn.q_proj, factor)["default"].weight)
    with pytest.raises(ValueError, match=message):
        model.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_whole_tensors_save(tmp_path):
    model = _model()
    param = model.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight
    param.ds_shape = param.shape  # gathered: the local tensor is the whole parameter
    model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").exists()
