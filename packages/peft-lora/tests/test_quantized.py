"""LoRA / DoRA on quantized tiny Llamas (bitsandbytes NF4 and FP4/bf16-compute 4-bit, LLM.int8(),
torchao int8 weight-only, HQQ 4-bit), on CPU with the real libraries, against Hugging Face PEFT 0.21.2
on the same quantized model."""

from __future__ import annotations

import json
import warnings

import peft
import peft_core
import pytest
import torch
from _quantized_models import VOCAB, backend_params, layer_class_name, quantized_llama
from peft_core import PeftModel, get_peft_model, prepare_model_for_kbit_training
from peft_lora import LoraConfig
from peft_lora.quantized.base import QuantizedLinear
from safetensors.torch import load_file

TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
        warnings.filterwarnings("ignore", message=".*requantizes.*")
        warnings.filterwarnings("ignore", message=".*rounding errors.*")
        warnings.filterwarnings("ignore", message=".*get_apply_tensor_subclass.*")
        yield


def _ids(seed: int = 3, rows: int = 2) -> torch.Tensor:
    return torch.randint(0, VOCAB, (rows, 7), generator=torch.Generator().manual_seed(seed))


def _ours(backend: str, **config):
    base = quantized_llama(backend)
    torch.manual_seed(11)
    return get_peft_model(base, LoraConfig(target_modules=TARGETS, r=4, lora_alpha=8, init_lora_weights=False, **config))


def _hf(backend: str, **config):
    base = quantized_llama(backend)
    torch.manual_seed(11)
    return peft.get_peft_model(
        base, peft.LoraConfig(target_modules=TARGETS, r=4, lora_alpha=8, init_lora_weights=False, **config)
    )


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def _q_proj(model):
    return model.base_model.model.model.layers[0].self_attn.q_proj


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("use_dora", [False, True])
def test_same_layers_tensors_and_outputs_as_hugging_face(backend, use_dora):
    ours, hf = _ours(backend, use_dora=use_dora), _hf(backend, use_dora=use_dora)
    layer = _q_proj(ours)
    assert isinstance(layer, QuantizedLinear) and type(layer).__name__ == layer_class_name(backend)
    assert type(layer.get_base_layer()) is type(_q_proj(hf).get_base_layer())  # the quantized module is kept
    theirs = {k: v for k, v in hf.state_dict().items() if "lora_" in k}
    mine = {k: v for k, v in ours.state_dict().items() if "lora_" in k}
    assert sorted(mine) == sorted(theirs) and all(torch.equal(mine[k], theirs[k]) for k in theirs)
    ids = _ids()
    if backend not in ("nf4", "fp4-bf16"):
        assert torch.equal(_logits(ours, ids), _logits(hf, ids))
        return
    # 4-bit: train mode first. At its first inference forward bitsandbytes repacks a 4-bit weight for its
    # AVX512-BF16 CPU kernel, and HF's DoRA then dequantizes that layout as if it were the plain one.
    ours.train()
    hf.train()
    expected = _logits(hf, ids)
    assert torch.equal(_logits(ours, ids), expected)
    ours.eval()
    hf.eval()
    if not use_dora:
        assert torch.equal(_logits(ours, ids), _logits(hf, ids))
    else:  # ours unpacks a copy of the repacked weight for DoRA's norms: close to the train-mode output
        torch.testing.assert_close(_logits(ours, ids), expected, rtol=0.05, atol=0.02)


@pytest.mark.parametrize("backend", backend_params())
def test_adapter_files_load_both_ways_with_identical_outputs(backend, tmp_path):
    ids = _ids()
    ours = _ours(backend)
    expected = _logits(ours, ids)
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and sorted(config["target_modules"]) == sorted(TARGETS)
    keys = set(load_file(tmp_path / "ours" / "adapter_model.safetensors"))
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys and len(keys) == 2 * 3 * 2

    in_hf = peft.PeftModel.from_pretrained(quantized_llama(backend), tmp_path / "ours")
    assert torch.equal(_logits(in_hf, ids), expected)
    back = PeftModel.from_pretrained(quantized_llama(backend), tmp_path / "ours")
    assert torch.equal(_logits(back, ids), expected)

    hf = _hf(backend)
    hf.save_pretrained(tmp_path / "hf")
    assert torch.equal(_logits(PeftModel.from_pretrained(quantized_llama(backend), tmp_path / "hf"), ids), _logits(hf, ids))


def _train(model, steps: int = 15) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = _ids(rows=4)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


@pytest.mark.parametrize("backend", backend_params())
def test_qlora_training_lowers_the_loss_and_reloads(backend, tmp_path):
    """prepare_model_for_kbit_training (gradient checkpointing, input grads) + all-linear LoRA."""
    base = prepare_model_for_kbit_training(quantized_llama(backend))
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(target_modules="all-linear", r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    assert isinstance(_q_proj(model), QuantizedLinear)
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    losses = _train(model)
    assert losses[-1] < 0.85 * losses[0], losses
    ids = _ids()
    expected = _logits(model, ids)
    model.save_pretrained(tmp_path / "trained")
    assert torch.equal(_logits(PeftModel.from_pretrained(quantized_llama(backend), tmp_path / "trained"), ids), expected)
    assert torch.equal(_logits(peft.PeftModel.from_pretrained(quantized_llama(backend), tmp_path / "trained"), ids), expected)


def test_qlora_training_follows_hugging_face_step_for_step():
    """The same NF4 model, preparation, adapter and optimiser in both libraries: identical losses."""
    ours = get_peft_model(prepare_model_for_kbit_training(quantized_llama("nf4")), _all_linear(LoraConfig, seed=0))
    hf = peft.get_peft_model(peft.prepare_model_for_kbit_training(quantized_llama("nf4")), _all_linear(peft.LoraConfig, seed=0))
    assert _train(ours, steps=6) == _train(hf, steps=6)


def _all_linear(config_cls, seed: int):
    torch.manual_seed(seed)
    return config_cls(target_modules="all-linear", r=8, lora_alpha=16, task_type="CAUSAL_LM")


# Requantizing a merged weight rounds it again: the merged weight's relative error (Frobenius, against
# the exact dequantized weight + delta) is about the scheme's own quantization error, and the logits
# move accordingly. Bounds over the values measured on this model (docs/qlora.md lists them).
WEIGHT_TOLERANCE = {"nf4": 0.12, "fp4-bf16": 0.15, "int8": 0.01, "torchao": 0.01, "hqq": 0.1}
LOGIT_TOLERANCE = {"nf4": 0.15, "fp4-bf16": 0.15, "int8": 0.03, "torchao": 0.03, "hqq": 0.12}


def _trained_size(model) -> None:
    """Shrink the random lora_B to the size of a trained adapter's (|delta| about a fifth of |W|)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("use_dora", [False, True])
def test_merge_requantizes_like_hugging_face(backend, use_dora):
    ids = _ids()
    ours = _ours(backend, use_dora=use_dora)
    _trained_size(ours)
    layer = _q_proj(ours)
    base_type = type(layer.get_base_layer())
    unmerged = _logits(ours, ids)  # (bitsandbytes repacks 4-bit weights for the CPU kernel here)
    exact = _exact_merged_weight(layer, use_dora)
    ours.merge_adapter(safe_merge=True)
    merged = _logits(ours, ids)
    assert 0 < _relative(layer.dequantize_weight(), exact) < WEIGHT_TOLERANCE[backend]
    assert 0 < (merged - unmerged).abs().max().item() / unmerged.abs().max().item() < LOGIT_TOLERANCE[backend]
    if backend != "torchao":  # HF merges torchao layers only with transformers' TorchAoConfig
        # both merged before any forward pass: on CPUs with AVX512-BF16 bitsandbytes repacks 4-bit
        # weights at the first inference forward (bf16 block scales), and HF dequantizes that layout wrongly
        fresh, hf = _ours(backend, use_dora=use_dora), _hf(backend, use_dora=use_dora)
        _trained_size(fresh)
        _trained_size(hf)
        fresh.merge_adapter()
        hf.merge_adapter()
        assert torch.equal(_logits(fresh, ids), _logits(hf, ids))
    ours.unmerge_adapter()
    assert not layer.merged and type(layer.get_base_layer()) is base_type
    restored = _logits(ours, ids)
    assert (restored - unmerged).abs().max().item() / unmerged.abs().max().item() < 2 * LOGIT_TOLERANCE[backend]

    plain = ours.merge_and_unload()
    q_proj = plain.model.layers[0].self_attn.q_proj
    assert type(q_proj) is base_type  # still the quantized module, with the adapter folded in
    assert not any("lora_" in n for n, _ in plain.named_modules())


def _exact_merged_weight(layer, use_dora: bool) -> torch.Tensor:
    weight = layer.dequantize_weight().float()
    merged = weight + layer.get_delta_weight("default").float()
    if use_dora:
        magnitude = layer.lora_magnitude_vector["default"].weight.float()
        merged = merged * (magnitude / merged.norm(dim=1)).view(-1, 1)
    return merged


@pytest.mark.parametrize("backend", backend_params())
def test_safe_merge_refuses_a_broken_adapter_and_leaves_the_base_as_it_was(backend):
    ours = _ours(backend)
    layer = _q_proj(ours)
    before = layer.dequantize_weight().clone()
    with torch.no_grad():
        layer.lora_B["default"].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        ours.merge_adapter(safe_merge=True)
    assert not layer.merged and torch.equal(_q_proj(ours).dequantize_weight(), before)


@pytest.mark.parametrize("backend", backend_params())
def test_mixed_adapter_batch_rows_match_single_adapter_runs(backend):
    model = _ours(backend)
    torch.manual_seed(5)
    model.add_adapter("other", LoraConfig(target_modules=TARGETS, r=2, init_lora_weights=False))
    model.eval()
    ids = _ids(rows=4)
    names = ["default", "other", "__base__", "default"]
    with torch.no_grad():
        mixed = model(input_ids=ids, adapter_names=names).logits
        model.set_adapter("default")
        default = model(input_ids=ids).logits
        model.set_adapter("other")
        other = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    expected = torch.stack([default[0], other[1], base[2], default[3]])
    torch.testing.assert_close(mixed, expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(default, other) and not torch.equal(default, base)


def test_kbit_preparation_matches_hugging_face_on_a_4bit_model():
    ours = prepare_model_for_kbit_training(quantized_llama("fp4-bf16"))
    hf = peft.prepare_model_for_kbit_training(quantized_llama("fp4-bf16"))
    mine = {n: (p.dtype, p.requires_grad, type(p).__name__) for n, p in ours.named_parameters()}
    theirs = {n: (p.dtype, p.requires_grad, type(p).__name__) for n, p in hf.named_parameters()}
    assert mine == theirs
    assert ours.model.gradient_checkpointing and hf.model.gradient_checkpointing
    ids = _ids()
    assert torch.equal(_logits(ours, ids), _logits(hf, ids))
    assert peft_core.prepare_model_for_kbit_training is prepare_model_for_kbit_training
