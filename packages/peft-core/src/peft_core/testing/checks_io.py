"""Checks of saving and loading in this process: files, `PeftConfig.from_pretrained`, state-dict
helpers and `low_cpu_mem_usage` round-trip with bit-identical outputs."""

from __future__ import annotations

import os

import torch

from ..registry import get_peft_method
from .declare import Case
from .harness import (
    OTHER,
    CheckFailed,
    Context,
    adapted,
    assert_same,
    config_for,
    load_target_config,
    expect_refusal,
    quiet,
    run,
)

_COMPARED_CONFIG_SKIP = ("inference_mode", "base_model_name_or_path", "auto_mapping")


def _config_fields(config) -> dict:
    return {k: v for k, v in config.to_dict().items() if k not in _COMPARED_CONFIG_SKIP}


def _saved(ctx: Context, case: Case, tag: str):
    model = adapted(ctx.suite, case, second=True)
    directory = ctx.tmp(f"{tag}-{case.name}")
    quiet(lambda: model.save_pretrained(directory))
    return model, directory


def check_save_load(ctx: Context, case: Case) -> None:
    """save_pretrained -> PeftConfig.from_pretrained / PeftModel.from_pretrained / load_adapter (both
    adapters) give the method's config class and bit-identical outputs; trainable loading works."""
    from safetensors.torch import load_file

    from ..config import PeftConfig
    from ..peft_model import PeftModel
    from ..state_dict import get_peft_model_state_dict

    model, directory = _saved(ctx, case, "save")
    first = run(model, case)
    model.set_adapter(OTHER)
    other = run(model, case)
    model.set_adapter("default")
    method = get_peft_method(ctx.suite.method)
    for sub in ("", OTHER):
        path = os.path.join(directory, sub)
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not os.path.isfile(os.path.join(path, name)):
                raise CheckFailed(f"save_pretrained wrote no {os.path.join(sub, name)}")
        config = PeftConfig.from_pretrained(path)
        if type(config) is not method.config_cls:
            raise CheckFailed(
                f"PeftConfig.from_pretrained returned {type(config).__qualname__}, not {method.config_cls.__qualname__}"
            )
        expected_fields = _config_fields(model.peft_config[sub or "default"])
        if _config_fields(config) != expected_fields:
            diff = {k for k in expected_fields if _config_fields(config).get(k) != expected_fields[k]}
            raise CheckFailed(f"the config read back from {sub or 'the root'} differs in {sorted(diff)}")
        saved = set(load_file(os.path.join(path, "adapter_model.safetensors")))
        helper = set(get_peft_model_state_dict(model, adapter_name=sub or "default"))
        if saved != helper:
            raise CheckFailed(f"saved keys differ from get_peft_model_state_dict: {sorted(saved ^ helper)[:5]}")

    loaded = quiet(lambda: PeftModel.from_pretrained(case.model.build(), directory))
    assert_same(run(loaded, case), first, case, "output after save_pretrained -> PeftModel.from_pretrained")
    trainable = sorted(n for n, p in loaded.named_parameters() if p.requires_grad)
    if trainable:
        raise CheckFailed(f"an adapter loaded for inference has trainable parameters: {trainable[:5]}")
    quiet(lambda: loaded.load_adapter(directory, OTHER, subfolder=OTHER))
    loaded.set_adapter(OTHER)
    assert_same(run(loaded, case), other, case, f"output of adapter {OTHER!r} after load_adapter(subfolder=...)")

    base = case.model.build()
    if case.config().is_prompt_learning:  # its files hold only the final virtual tokens
        expect_refusal(lambda: PeftModel.from_pretrained(base, directory, is_trainable=True), "is_trainable=True loading")
        return
    trained = quiet(lambda: PeftModel.from_pretrained(base, directory, is_trainable=True))
    want = sorted(n for n, p in adapted(ctx.suite, case, perturbed=False).named_parameters() if p.requires_grad)
    got = sorted(n for n, p in trained.named_parameters() if p.requires_grad)
    if got != want:
        raise CheckFailed(f"is_trainable=True loading made {got[:5]} trainable; a new adapter trains {want[:5]}")


def check_state_dict(ctx: Context, case: Case) -> None:
    """get_peft_model_state_dict -> set_peft_model_state_dict into a fresh model round-trips exactly."""
    from ..mapping import get_peft_model
    from ..state_dict import get_peft_model_state_dict, set_peft_model_state_dict

    model = adapted(ctx.suite, case)
    expected = run(model, case)
    state = get_peft_model_state_dict(model)
    if not state:
        raise CheckFailed("get_peft_model_state_dict returned nothing")
    with_name = [k for k in state if "default" in k.split(".")]
    if with_name:
        raise CheckFailed(f"state-dict keys keep the adapter name (Hugging Face's files drop it): {with_name[:5]}")
    fresh = quiet(lambda: get_peft_model(case.model.build(), load_target_config(case))).eval()
    quiet(lambda: set_peft_model_state_dict(fresh, state))
    assert_same(run(fresh, case), expected, case, "output after set_peft_model_state_dict into a fresh model")
    again = get_peft_model_state_dict(fresh)
    if set(again) != set(state) or any(not torch.equal(again[k], state[k]) for k in state):
        raise CheckFailed("get_peft_model_state_dict after set_peft_model_state_dict differs from what was set")


def check_low_cpu_mem_usage(ctx: Context, case: Case) -> None:
    """Adapters created with low_cpu_mem_usage=True (on the meta device) load to real, identical tensors."""
    from ..mapping import get_peft_model
    from ..peft_model import PeftModel
    from ..state_dict import get_peft_model_state_dict, set_peft_model_state_dict

    model, directory = _saved(ctx, case, "lowmem")
    expected = run(model, case)
    state = get_peft_model_state_dict(model)
    config = load_target_config(case)
    made = quiet(lambda: get_peft_model(case.model.build(), config, low_cpu_mem_usage=True))
    quiet(lambda: set_peft_model_state_dict(made, state, low_cpu_mem_usage=True))
    _no_meta(made, "get_peft_model(low_cpu_mem_usage=True) + set_peft_model_state_dict")
    assert_same(run(made.eval(), case), expected, case, "output after low_cpu_mem_usage creation and loading")
    loaded = quiet(lambda: PeftModel.from_pretrained(case.model.build(), directory, low_cpu_mem_usage=True))
    _no_meta(loaded, "PeftModel.from_pretrained(low_cpu_mem_usage=True)")
    assert_same(run(loaded, case), expected, case, "output after PeftModel.from_pretrained(low_cpu_mem_usage=True)")
    quiet(lambda: loaded.load_adapter(directory, "third", subfolder=OTHER, low_cpu_mem_usage=True))
    _no_meta(loaded, "load_adapter(low_cpu_mem_usage=True)")


def _no_meta(model, what: str) -> None:
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise CheckFailed(f"{what} left tensors on the meta device: {meta[:5]}")
