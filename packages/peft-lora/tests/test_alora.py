"""Activated LoRA (`alora_invocation_tokens`): the adapter acts from the last invocation onward.

Against Hugging Face PEFT 0.21.2 on a tiny Llama: bit-identical logits and greedy generations in
both directions (rows with the invocation once, twice, or not at all), and the positions before the
invocation equal the base model's exactly.
"""

from __future__ import annotations

import copy
import warnings

import peft_core
import pytest
import torch
from _hf_compat import hf_peft, load_in_hf
from _lora_test_models import randomize_lora, tiny_llama
from peft_core.errors import ConfigError
from peft_lora import LoraConfig

INVOCATION = [7, 8]
IDS = torch.tensor([[1, 2, 3, 7, 8, 4, 5], [9, 7, 8, 10, 7, 8, 11], [1, 2, 3, 4, 5, 6, 2]])
CONFIG = dict(r=4, target_modules=["q_proj", "v_proj", "down_proj"], alora_invocation_tokens=INVOCATION, task_type="CAUSAL_LM")


def _logits(model, ids=IDS, **kwargs):
    with torch.no_grad():
        return model(ids, **kwargs).logits


def _generate(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.generate(IDS, max_new_tokens=4, do_sample=False, pad_token_id=0)


@pytest.mark.compat
def test_alora_matches_hf_both_ways(tmp_path):
    peft = hf_peft()
    base = tiny_llama()
    hf = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**CONFIG))
    randomize_lora(hf, seed=1)
    hf.save_pretrained(tmp_path / "hf")
    ours = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path / "hf")
    assert torch.equal(_logits(ours), _logits(hf))
    assert torch.equal(_generate(ours), _generate(hf))

    mine = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(**CONFIG))
    randomize_lora(mine, seed=2)
    mine.save_pretrained(tmp_path / "ours")
    theirs = load_in_hf(tiny_llama(), tmp_path / "ours")
    assert torch.equal(_logits(theirs), _logits(mine))
    assert torch.equal(_generate(theirs), _generate(mine))


def test_only_positions_from_the_last_invocation_are_adapted():
    base = tiny_llama()
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(**CONFIG))
    randomize_lora(model, seed=3)
    adapted, plain = _logits(model), _logits(base)
    changed = (adapted - plain).abs().amax(-1) > 0
    # row 0: invocation at 3 -> positions 3..6; row 1: last invocation at 4 -> 4..6; row 2: none
    assert changed.tolist() == [
        [False, False, False, True, True, True, True],
        [False, False, False, False, True, True, True],
        [False] * 7,
    ]
    assert torch.equal(adapted[:, :3], plain[:, :3])  # bit-identical before the invocation
    offsets = _logits(model, alora_offsets=[7, None, 2])  # explicit offsets win
    assert ((offsets - plain).abs().amax(-1) > 0).tolist()[2] == [False] * 5 + [True, True]


def test_mixed_batch_uses_each_rows_invocation():
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(**CONFIG))
    model.add_adapter("plain", LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    randomize_lora(model, seed=4)
    model.eval()
    mixed = _logits(model, adapter_names=["default", "plain", "__base__"])
    alone = {}
    for name in ("default", "plain"):
        model.set_adapter(name)
        alone[name] = _logits(model)
    with model.disable_adapter():
        base = _logits(model)
    torch.testing.assert_close(mixed[0], alone["default"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[1], alone["plain"][1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[2], base[2], atol=1e-5, rtol=1e-5)


def test_refusals():
    with pytest.raises(ConfigError, match="can't be combined"):
        peft_core.get_peft_model(tiny_llama(), LoraConfig(**{**CONFIG, "use_dora": True}))
    with pytest.raises(ConfigError, match="non-empty list"):
        LoraConfig(alora_invocation_tokens=[])
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(**CONFIG))
    with pytest.raises(ValueError, match="can't be merged"):
        model.merge_and_unload()
    with pytest.warns(UserWarning, match="CAUSAL_LM"):
        LoraConfig(alora_invocation_tokens=INVOCATION, target_modules=["q_proj"])
