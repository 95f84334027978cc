"""LoRA on nn.Parameters (`target_parameters`): the stacked expert weights of transformers 5 MoE models.

Compatibility cases run Hugging Face PEFT 0.21.2 and peft-lora on the same tiny Qwen3-MoE, Mixtral and
GPT-OSS models (random weights) and require bit-identical outputs in both directions; the other tests
check the math against an independent reference (the adapted expert weights built by hand),
training, merging, several adapters and the refusals.
"""

from __future__ import annotations

import copy
import json
import os
import warnings

import peft_core
import pytest
import torch
from _hf_compat import config_json, hf_peft, load_in_hf, roundtrip
from _lora_test_models import input_ids, logits, randomize_lora, tiny_moe
from peft_core.errors import ConfigError
from peft_lora import LoraConfig
from peft_lora.layers.param import ParamWrapper
from safetensors.torch import save_file
from torch import nn

pytest.importorskip("transformers", minversion="5")
EXPERTS = ["experts.gate_up_proj", "experts.down_proj"]


def _run(model):
    return logits(model.eval(), input_ids())


@pytest.mark.compat
@pytest.mark.parametrize("kind", ["qwen3_moe", "mixtral", "gpt_oss"])
def test_experts_and_attention_match_hf_both_ways(tmp_path, kind):
    _, ours = roundtrip(
        tmp_path,
        lambda: tiny_moe(kind),
        _run,
        dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], target_parameters=EXPERTS),
    )
    experts = ours.base_model.model.model.layers[0].mlp.experts
    assert isinstance(experts, ParamWrapper) and experts.parameter_name == "down_proj"
    assert experts.base_layer.parameter_name == "gate_up_proj"
    saved = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    assert sorted(saved["target_parameters"]) == sorted(EXPERTS)


@pytest.mark.compat
@pytest.mark.parametrize("kind", ["qwen3_moe", "gpt_oss"])
def test_one_expert_weight_rslora_and_rank_pattern_match_hf(tmp_path, kind):
    roundtrip(
        tmp_path,
        lambda: tiny_moe(kind),
        _run,
        dict(
            r=4,
            lora_alpha=8,
            use_rslora=True,
            target_modules=["o_proj"],
            target_parameters=["down_proj"],
            rank_pattern={r"layers\.1\.mlp\.experts\.down_proj": 2},
        ),
    )


@pytest.mark.compat
@pytest.mark.parametrize(
    "kind, targets",
    [
        ("qwen3_moe", ["q_proj", "gate_proj", "up_proj", "down_proj"]),
        ("mixtral", ["k_proj", "w1", "w2", "w3"]),
        ("qwen3_moe", "all-linear"),
        ("mixtral", "all-linear"),
        ("qwen3_moe", r".*\.(q_proj|gate_proj|up_proj)"),
    ],
)
def test_transformers4_recipes_are_converted_like_hf(tmp_path, kind, targets):
    """Per-expert projection names (and all-linear) on a fused model become parameter targets: the fused
    gate/up pair gets rank 2r and alpha 2·alpha, as in Hugging Face PEFT."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roundtrip(tmp_path, lambda: tiny_moe(kind), _run, dict(r=2, lora_alpha=8, target_modules=targets))
    config = config_json(tmp_path / "ours")
    assert "gate_up_proj" in config["target_parameters"]
    assert config["rank_pattern"] == {r".*\.gate_up_proj": 4} and config["alpha_pattern"] == {r".*\.gate_up_proj": 16}


def test_half_of_a_fused_pair_is_refused():
    with pytest.raises(ConfigError, match="fused in one parameter"):
        peft_core.get_peft_model(tiny_moe("qwen3_moe"), LoraConfig(target_modules=["gate_proj", "down_proj"]))


@pytest.mark.compat
def test_all_linear_names_the_experts_it_leaves_out(tmp_path):
    """GPT-OSS is not converted: all-linear adapts attention only, and says so."""
    with pytest.warns(UserWarning, match=r"stacked expert weight.*target_parameters=\['experts.down_proj'"):
        model = peft_core.get_peft_model(tiny_moe("gpt_oss"), LoraConfig(r=2, target_modules="all-linear"))
    assert not any(isinstance(m, ParamWrapper) for m in model.modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roundtrip(tmp_path, lambda: tiny_moe("gpt_oss"), _run, dict(r=2, target_modules="all-linear"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # experts covered: no warning
        peft_core.get_peft_model(
            tiny_moe("gpt_oss"), LoraConfig(r=2, target_modules="all-linear", target_parameters=EXPERTS)
        )


def _expert_reference(base, model, adapter="default"):
    """The MoE model with each expert weight replaced by W_e + s·B_e@A_e, built from the factors by hand."""
    ref = copy.deepcopy(base)
    for name, wrapper in model.named_modules():
        if not isinstance(wrapper, ParamWrapper) or adapter not in wrapper.lora_A:
            continue
        holder = ref.get_submodule(peft_core.tuners.matching.strip_base_layers(name).removeprefix("base_model.model."))
        param = getattr(holder, wrapper.parameter_name)
        a = wrapper.lora_A[adapter].weight.detach()
        b = wrapper.lora_B[adapter].weight.detach()
        experts, r = wrapper.num_experts, wrapper.r[adapter]
        with torch.no_grad():
            for e in range(experts):
                a_e = a[e * r : (e + 1) * r]  # rows: expert-major
                b_e = b[:, [k * experts + e for k in range(r)]]  # columns: rank-major, expert-minor
                delta = wrapper.scaling[adapter] * b_e @ a_e  # (out, in)
                param[e] += delta.T if wrapper.stored_in_out else delta
    return ref


@pytest.mark.parametrize("kind", ["qwen3_moe", "gpt_oss"])
def test_forward_equals_hand_built_expert_weights(kind):
    base = tiny_moe(kind)
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(r=3, lora_alpha=6, target_parameters=EXPERTS))
    randomize_lora(model, seed=3)
    expected = _run(_expert_reference(base, model))
    torch.testing.assert_close(_run(model), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(expected, _run(base), atol=1e-3)


def test_training_updates_only_the_expert_factors():
    base = tiny_moe("qwen3_moe")
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_parameters=EXPERTS))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert torch.equal(_run(model), _run(base))  # B = 0: a no-op start
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids = input_ids()
    for _ in range(3):
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, param in model.named_parameters():
        if ".experts." in name and ".lora_" not in name:
            assert param.grad is None  # the base experts stay frozen
    assert not torch.equal(_run(model), _run(base))
    original = dict(base.named_parameters())
    for name, param in model.get_base_model().named_parameters():
        if ".lora_" not in name:
            key = peft_core.tuners.matching.strip_base_layers(name)
            assert torch.equal(param, original[key]), name


def test_merge_unmerge_disable_and_unload():
    base = tiny_moe("qwen3_moe")
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_parameters=EXPERTS))
    randomize_lora(model, seed=4)
    adapted = _run(model)
    with model.disable_adapter():
        torch.testing.assert_close(_run(model), _run(base), atol=0, rtol=0)
    model.merge_adapter()
    torch.testing.assert_close(_run(model), adapted, atol=1e-5, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(_run(model), adapted, atol=1e-6, rtol=1e-6)
    merged = copy.deepcopy(model).merge_and_unload(safe_merge=True)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert list(dict(merged.named_parameters())) == list(dict(base.named_parameters()))
    torch.testing.assert_close(_run(merged), adapted, atol=1e-5, rtol=1e-5)
    unloaded = model.unload()
    torch.testing.assert_close(_run(unloaded), _run(base), atol=1e-6, rtol=1e-6)


@pytest.mark.compat
def test_two_adapters_switch_save_and_load_in_hf(tmp_path):
    base = tiny_moe("mixtral")
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_parameters=EXPERTS))
    model.add_adapter("other", LoraConfig(r=4, lora_alpha=2, target_parameters=EXPERTS))
    randomize_lora(model, seed=5)
    first = _run(model)
    model.set_adapter("other")
    second = _run(model)
    assert not torch.equal(first, second)
    model.save_pretrained(tmp_path)
    hf = load_in_hf(tiny_moe("mixtral"), tmp_path)
    hf.load_adapter(tmp_path / "other", adapter_name="other")
    assert torch.equal(_run(hf), first)
    hf.set_adapter("other")
    assert torch.equal(_run(hf), second)
    model.delete_adapter("other")
    assert torch.equal(_run(model), first)
    with pytest.raises(ConfigError, match="same parameters"):
        model.add_adapter("third", LoraConfig(r=2, target_parameters=["experts.down_proj"]))
    assert list(model.peft_config) == ["default"] and torch.equal(_run(model), first)


def test_low_cpu_mem_usage_and_lazy_loading(tmp_path):
    model = peft_core.get_peft_model(tiny_moe("gpt_oss"), LoraConfig(r=2, target_parameters=EXPERTS))
    randomize_lora(model, seed=6)
    expected = _run(model)
    model.save_pretrained(tmp_path)
    loaded = peft_core.PeftModel.from_pretrained(tiny_moe("gpt_oss"), tmp_path, low_cpu_mem_usage=True)
    assert torch.equal(_run(loaded), expected)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(lora_dropout=0.1), "lora_dropout"),
        (dict(use_dora=True), "use_dora"),
        (dict(lora_bias=True), "lora_bias"),
        (dict(init_lora_weights="pissa"), "init_lora_weights"),
    ],
)
def test_options_a_parameter_cannot_honour_are_refused(options, match):
    base = tiny_moe("qwen3_moe")
    with pytest.raises(ConfigError, match=match):
        peft_core.get_peft_model(base, LoraConfig(target_parameters=EXPERTS, **options))
    assert not any(isinstance(m, ParamWrapper) for m in base.modules())  # the model is left as it was


def test_bad_targets_are_refused():
    with pytest.raises(ConfigError, match="already adapted"):
        peft_core.get_peft_model(
            tiny_moe("qwen3_moe"), LoraConfig(target_modules=["q_proj"], target_parameters=["q_proj.weight", "q_proj"])
        )
    with pytest.raises(ConfigError, match="2-D"):
        peft_core.get_peft_model(tiny_moe("qwen3_moe"), LoraConfig(target_parameters=["input_layernorm.weight"]))
    with pytest.raises(ConfigError, match="matched no parameter"):
        peft_core.get_peft_model(tiny_moe("qwen3_moe"), LoraConfig(target_parameters=["experts.nope"]))
    model = peft_core.get_peft_model(tiny_moe("qwen3_moe"), LoraConfig(target_parameters=EXPERTS))
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        model(input_ids(), adapter_names=["default", "__base__"])
    with pytest.raises(ConfigError, match="target_parameters"):
        model.add_weighted_adapter(["default"], [1.0], "mix", combination_type="linear")


class _Holder(nn.Module):
    """A module that uses a bare 2-D parameter as a linear weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 5) * 0.3)

    def forward(self, x):
        return x @ self.weight.T


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner = _Holder()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.inner(x)))


@pytest.mark.compat
def test_plain_2d_parameter_matches_hf(tmp_path):
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    roundtrip(tmp_path, _Net, lambda m: m.eval()(x).detach(), dict(r=2, target_parameters=["inner.weight"]))


@pytest.mark.compat
@pytest.mark.parametrize("kind, projections", [("mixtral", ("w1", "w3", "w2")), ("qwen3_moe", ("gate_proj", "up_proj", "down_proj"))])
def test_transformers4_adapter_files_are_fused_on_load(tmp_path, kind, projections):
    """An adapter saved from the per-expert (transformers 4) layout loads on the fused model: the same
    outputs as Hugging Face PEFT's conversion, and as the experts adapted one by one by hand."""
    peft = hf_peft()
    base = tiny_moe(kind)
    experts, hidden = 4, 16
    inter = base.model.layers[0].mlp.experts.down_proj.shape[-1]
    r, alpha = 2, 6
    g = torch.Generator().manual_seed(7)
    state, per_expert = {}, {}
    block = "block_sparse_moe" if kind == "mixtral" else "mlp"
    for layer in range(2):
        for e in range(experts):
            for proj in projections:
                down = proj == projections[2]
                in_f, out_f = (inter, hidden) if down else (hidden, inter)
                a = torch.randn(r, in_f, generator=g) * 0.3
                b = torch.randn(out_f, r, generator=g) * 0.3
                prefix = f"base_model.model.model.layers.{layer}.{block}.experts.{e}.{proj}"
                state[f"{prefix}.lora_A.weight"], state[f"{prefix}.lora_B.weight"] = a, b
                per_expert[(layer, e, proj)] = (alpha / r) * b @ a
    os.makedirs(tmp_path / "v4")
    save_file(state, tmp_path / "v4" / "adapter_model.safetensors", metadata={"format": "pt"})
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": list(projections), "task_type": None}
    (tmp_path / "v4" / "adapter_config.json").write_text(json.dumps(config))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = peft.PeftModel.from_pretrained(tiny_moe(kind), tmp_path / "v4")
        ours = peft_core.PeftModel.from_pretrained(tiny_moe(kind), tmp_path / "v4")
    assert torch.equal(_run(ours), _run(hf))

    reference = copy.deepcopy(base)  # the transformers 4 semantics: each expert's own LoRA
    with torch.no_grad():
        for layer in range(2):
            fused = reference.model.layers[layer].mlp.experts
            for e in range(experts):
                gate, up, down = (per_expert[(layer, e, p)] for p in projections)
                fused.gate_up_proj[e] += torch.cat([gate, up], dim=0)
                fused.down_proj[e] += down
    torch.testing.assert_close(_run(ours), _run(reference), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_run(reference), _run(base), atol=1e-3)

    ours.save_pretrained(tmp_path / "fused")  # saved in the fused layout, which HF loads as it is
    assert torch.equal(_run(load_in_hf(tiny_moe(kind), tmp_path / "fused")), _run(ours))
