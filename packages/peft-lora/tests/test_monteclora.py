"""MonteCLoRA (`monteclora_config`) against Hugging Face PEFT 0.21.2 and against its definition.

Both ways on a tiny Llama: the same files (the sampler's priors and last sampled state next to A and B),
bit-identical eval outputs (eval and merging are plain LoRA); the variational loss of the same parameters
equals HF's; training-mode forwards are stochastic and train the priors through the loss; what can't work is
refused.
"""

from __future__ import annotations

import copy

import peft_core
import pytest
import torch
from _hf_compat import hf_peft, roundtrip
from _lora_test_models import input_ids, logits, randomize_lora, tiny_llama
from peft_core.errors import ConfigError
from peft_lora import LoraConfig, MontecloraConfig
from peft_lora.variants.monteclora import MontecloraSampler


def _run(model):
    return logits(model.eval(), input_ids())


def _randomize_all(model, seed):
    """Random LoRA factors and priors (positive, as trained priors are after exp)."""
    randomize_lora(model, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "monteclora_sampler" in name:
                param.copy_(torch.rand(param.shape, generator=g))


@pytest.mark.compat
@pytest.mark.parametrize("mc", [{}, {"num_samples": 3, "use_entropy": True, "kl_loss_weight": 0.1}], ids=["defaults", "custom"])
def test_monteclora_matches_hf_both_ways(tmp_path, mc):
    config = dict(r=4, target_modules=["q_proj", "v_proj"], monteclora_config=mc)
    roundtrip(tmp_path, tiny_llama, _run, config, randomize=_randomize_all)
    # the variational loss of the same parameters (before any sampling step) is HF's
    ours = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path / "hf", is_trainable=True)
    theirs = hf_peft().PeftModel.from_pretrained(tiny_llama(), tmp_path / "hf", is_trainable=True)
    ours.train()
    theirs.train()
    torch.testing.assert_close(ours.base_model._get_monteclora_loss(), theirs.base_model._get_monteclora_loss())
    ours.eval()
    assert ours.base_model._get_monteclora_loss() == 0.0


def test_training_samples_a_and_the_loss_trains_the_priors():
    model = peft_core.get_peft_model(
        tiny_llama(), LoraConfig(r=4, target_modules=["q_proj"], monteclora_config=MontecloraConfig(sample_scaler=0.5))
    )
    randomize_lora(model, seed=2)
    evaluated = _run(model)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    expected = layer.get_base_layer().weight + layer.scaling["default"] * (b @ a)
    x = torch.randn(3, 32)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, expected), atol=1e-5, rtol=1e-4)  # eval: LoRA

    model.train()
    ids = input_ids()
    first, second = model(ids).logits, model(ids).logits
    assert not torch.allclose(first, second) and not torch.allclose(first, evaluated)  # fresh noise each step
    sampler = layer.lora_monteclora_sampler["default"]
    assert isinstance(sampler, MontecloraSampler)
    assert torch.allclose(sampler.expert_weights.sum(), torch.tensor(1.0))  # the last mixture weights are saved
    (second.pow(2).mean() + model.base_model._get_monteclora_loss()).backward()
    assert a.grad is not None and sampler.std_prior.grad.abs().sum() > 0 and sampler.expert_weights_prior.grad.abs().sum() > 0
    copy.deepcopy(model)  # the step's graph is not part of a copy

    model.eval()
    merged = copy.deepcopy(model).merge_and_unload()
    torch.testing.assert_close(logits(merged, ids), _run(model), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "config, match",
    [
        (dict(target_modules=["embed_tokens"]), "linear layers only"),
        (dict(target_modules=["q_proj"], use_dora=True), "can't be combined"),
        (dict(target_modules=["q_proj"], monteclora_config={"num_samples": 0}), "num_samples"),
        (dict(target_modules=["q_proj"], monteclora_config={"dirichlet_prior": 0.0}), "dirichlet_prior"),
    ],
    ids=["embedding", "dora", "no-samples", "dirichlet-prior"],
)
def test_what_cannot_work_is_refused(config, match):
    base = tiny_llama()
    with pytest.raises(ConfigError, match=match):
        peft_core.get_peft_model(base, LoraConfig(**{"r": 2, "monteclora_config": {}, **config}))
    assert not [n for n, _ in base.named_modules() if "lora_" in n]
