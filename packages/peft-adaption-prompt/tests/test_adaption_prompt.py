"""What is particular to adaption prompts: the zero-init gate on Llama attention against an independent
computation with transformers' own attention pieces, which layers get adapted, generation with a cache, and
Hugging Face PEFT's draws and generation. The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from peft_core import ConfigError, get_peft_method, get_peft_model
from peft_core.testing import hf, models
from peft_core.testing.tasks import batch, greedy_by_forward

from peft_adaption_prompt import AdaptedAttention, AdaptionPromptConfig

torch.set_num_threads(1)


def _adapted(base=None, seed: int = 0, **kwargs):
    kwargs = {"adapter_len": 3, "adapter_layers": 1, "task_type": "CAUSAL_LM", **kwargs}
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(base if base is not None else models.LLAMA.build(), AdaptionPromptConfig(**kwargs)).eval()


def test_registered_with_its_entry_point():
    method = get_peft_method("adaption_prompt")
    assert method.config_cls is AdaptionPromptConfig and method.prefix == "adaption_"


def test_the_top_layers_are_adapted_and_the_target_name_follows_the_model_type():
    model = _adapted(adapter_layers=1)
    layers = model.base_model.model.model.layers
    assert not isinstance(layers[0].self_attn, AdaptedAttention) and isinstance(layers[1].self_attn, AdaptedAttention)
    assert model.peft_config["default"].target_modules == "self_attn"
    gpt2 = _adapted(models.GPT2.build(), adapter_layers=2)
    assert gpt2.peft_config["default"].target_modules == "attn"
    assert all(isinstance(block.attn, AdaptedAttention) for block in gpt2.base_model.model.transformer.h)
    with pytest.raises(ConfigError, match="at most 2"):
        _adapted(adapter_layers=3)
    with pytest.raises(ConfigError, match="model types"):
        _adapted(models.BERT.build(), task_type="SEQ_CLS")
    with pytest.raises(ConfigError, match="adapter_len"):
        _adapted(adapter_len=None)


def test_gated_attention_over_the_prompt_on_llama():
    """out = attention(x) + o_proj(g · softmax(q Kᵀ/√d) V), with q rotated like the attention's own queries and
    the prompt's keys and values from k_proj / v_proj (grouped heads repeated), no rotation."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    model = _adapted(adapter_len=3)
    layer = model.base_model.model.model.layers[1].self_attn
    attention = layer.get_base_layer()
    hidden = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(1))
    positions = torch.arange(5).unsqueeze(0)
    cos, sin = model.base_model.model.model.rotary_emb(hidden, positions)
    kwargs = dict(hidden_states=hidden, position_embeddings=(cos, sin), attention_mask=None)
    with torch.no_grad():
        base_out = attention(**kwargs)[0]
        assert torch.equal(layer(**kwargs)[0], base_out)  # gate 0: exactly the base attention
        layer.adaption_gate["default"].fill_(0.7)
        got = layer(**kwargs)[0]
        q = attention.q_proj(hidden).view(2, 5, 4, 8).transpose(1, 2)
        q, _ = apply_rotary_pos_emb(q, q, cos, sin)
        prompt = layer.adaption_prompt["default"][0]  # [3, 32]
        k = repeat_kv(attention.k_proj(prompt).view(1, 3, 2, 8).transpose(1, 2).expand(2, -1, -1, -1), 2)
        v = repeat_kv(attention.v_proj(prompt).view(1, 3, 2, 8).transpose(1, 2).expand(2, -1, -1, -1), 2)
        probs = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(8), dim=-1)
        extra = attention.o_proj((0.7 * probs @ v).transpose(1, 2).reshape(2, 5, 32))
        torch.testing.assert_close(got, base_out + extra, rtol=1e-5, atol=1e-6)


def test_zero_init_gate_trains_first():
    """At the start only the gate gets a gradient (the prompt's contribution is multiplied by it)."""
    model = _adapted()
    model.train()
    ids, mask = batch()
    model(input_ids=ids, attention_mask=mask).logits.pow(2).mean().backward()
    layer = model.base_model.model.model.layers[1].self_attn
    assert layer.adaption_gate["default"].grad.abs().item() > 0
    assert layer.adaption_prompt["default"].grad.abs().max() == 0
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == [
        "base_model.model.model.layers.1.self_attn.adaption_gate.default",
        "base_model.model.model.layers.1.self_attn.adaption_prompt.default",
    ]


def _gate(model, value: float) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "adaption_gate" in name:
                param.fill_(value)


def test_generation_with_a_cache_equals_greedy_decoding_by_forward():
    model = _adapted(adapter_layers=2)
    _gate(model, 0.8)
    ids, mask = batch()
    with torch.no_grad():
        got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(got, greedy_by_forward(model, "CAUSAL_LM"))


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


@needs_hf
@pytest.mark.parametrize("make", [models.LLAMA, models.GPT2], ids=["llama", "gpt2"])
def test_seeded_prompts_and_generation_equal_hugging_faces(make):
    kwargs = dict(adapter_len=3, adapter_layers=2, task_type="CAUSAL_LM")
    ours = _adapted(make.build(), seed=6, **kwargs)
    torch.manual_seed(6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(make.build(), peft.AdaptionPromptConfig(**kwargs)).eval()
    mine = {n.replace(".default", ""): p for n, p in ours.named_parameters() if "adaption" in n}
    hers = {n: p for n, p in theirs.named_parameters() if "adaption" in n}
    assert set(mine) == set(hers) and all(torch.equal(mine[n], hers[n]) for n in mine)
    _gate(ours, 0.6), _gate(theirs, 0.6)
    ids, mask = batch()
    gen = dict(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(ours.generate(**gen), theirs.generate(**gen))
