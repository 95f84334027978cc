"""Real installed method packages applied to `peft_core.testing.TinyMLP` (for cross-method core tests);
a method that can't adapt its linear layers uses its own first conformance case instead.

Core's own tests use the test-only toy method; a few reliability tests also run every installed
method package (LoRA, IA3, LoHa, ...) to show the guarantees hold for real ones. When peft-core is
tested alone (no method package installed) those tests skip.
"""

from __future__ import annotations

import torch

# Options some methods need to fit the 16-feature TinyMLP (the values each package's smoke test uses).
OVERRIDES = {
    "adalora": {"total_step": 10, "init_r": 4},
    "c3a": {"block_size": 4},
    "fourierft": {"n_frequency": 20},
    "ia3": {"feedforward_modules": ["lin1"]},
    "miss": {"r": 4},
    "road": {"group_size": 4},
    "shira": {"r": 2},
    "trainable_tokens": {"token_indices": [1, 3]},
    "vera": {"r": 4},
    "waveft": {"n_frequency": 20},
}


def installed_method_packages() -> dict[str, str]:
    """method name -> import package, from entry points (nothing is imported)."""
    import peft_core

    return {m.name: m.entry_point.split(":")[0] for m in peft_core.installed_methods() if m.distribution is not None}


def layer_methods() -> list[str]:
    """Installed methods that adapt layers of a plain module (prompt learning needs a transformers model)."""
    import peft_core

    out = []
    for name in sorted(installed_method_packages()):
        config_cls = peft_core.get_peft_method(name).config_cls
        if not _is_prompt_learning(config_cls):
            out.append(name)
    return out


def _is_prompt_learning(config_cls: type) -> bool:
    from peft_core import PromptLearningConfig

    return issubclass(config_cls, PromptLearningConfig)


def build(name: str, seed: int = 0):
    """(PeftModel with non-trivial adapter weights, base state dict, input).

    Layer methods adapt a TinyMLP; prompt-learning methods a tiny random Llama (input: token ids).
    """
    from peft_core import get_peft_model
    from peft_core.testing import TinyMLP, example_config

    import peft_core

    torch.manual_seed(seed)
    if _is_prompt_learning(peft_core.get_peft_method(name).config_cls):
        from core_test_models import make_tiny_llama

        base = make_tiny_llama(seed)
        config = example_config(name, [], task_type="CAUSAL_LM", num_virtual_tokens=4)
        x = torch.randint(0, 128, (2, 5))
    else:
        base = TinyMLP()
        config = example_config(name, ["lin0", "lin1"], **OVERRIDES.get(name, {}))
        x = torch.randn(3, 16)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    torch.manual_seed(seed + 1)
    try:
        model = get_peft_model(base, config)
    except peft_core.PeftError:
        # a method that can't adapt the MLP's linear layers (e.g. one that wraps whole decoder blocks):
        # its own first conformance case instead
        base, config, x = _first_conformance_case(name)
        base_state = {k: v.clone() for k, v in base.state_dict().items()}
        torch.manual_seed(seed + 1)
        model = get_peft_model(base, config)
    with torch.no_grad():  # some methods start as a no-op even with init off (e.g. IA3 vectors of ones)
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    return model.eval(), base_state, x


def _first_conformance_case(name: str):
    """(base model, config with a non-trivial start, forward keyword arguments) of the method's first case."""
    from peft_core.testing import load_suite, with_overrides

    suite, _ = load_suite(name)
    case = suite.cases[0]
    return case.model.build(), with_overrides(case.config(), suite.random_init), case.model.make_inputs()


def output(model, x) -> torch.Tensor:
    out = model(**x) if isinstance(x, dict) else model(x)
    return out if torch.is_tensor(out) else out.logits
