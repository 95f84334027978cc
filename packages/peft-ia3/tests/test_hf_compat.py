"""File compatibility with Hugging Face PEFT 0.21.2, both directions, with non-trivial (IA)³ vectors."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
import torch

import peft_core
from peft_core.testing.hf import hf_peft, hf_peft_status, several_adapters_both_ways
from peft_core.testing.models import forward_output
from peft_ia3 import IA3Config

peft = hf_peft()
if peft is None:  # absent, or `import peft` is not Hugging Face's distribution
    pytest.skip(hf_peft_status(), allow_module_level=True)
pytestmark = pytest.mark.compat

# The both-ways file round trips of every configuration (defaults, regex targets, GPT-2 Conv1D,
# Conv2d/3d, exclude_modules + modules_to_save) are the conformance kit's `hf_files` check on the
# cases of peft_ia3.conformance. The tests below cover what is specific to (IA)³.
MERGE_CASES: dict[str, dict[str, Any]] = {
    "tiny_llama": {"task_type": "CAUSAL_LM"},
    "tiny_gpt2": {"target_modules": ["c_attn", "mlp.c_proj"], "feedforward_modules": ["mlp.c_proj"], "task_type": "CAUSAL_LM"},
    "convnet": {"target_modules": ["conv0", "conv1", "conv2"], "feedforward_modules": ["conv1"]},  # grouped conv1
}


def _inputs(kind: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    if kind in ("tiny_llama", "tiny_gpt2"):
        return torch.randint(0, 128, (3, 7), generator=gen)
    return torch.randn(4, 8, generator=gen)


def _build(lib: str, base: torch.nn.Module, kwargs: dict[str, Any], randomize: Callable) -> torch.nn.Module:
    if lib == "hf":
        model = peft.get_peft_model(base, peft.IA3Config(**kwargs))
    else:
        model = peft_core.get_peft_model(base, IA3Config(**kwargs))
    randomize(model)
    return model.eval()


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2", "convnet"])
def test_merged_weights_equal_hf(fixture, request, randomize):
    base = request.getfixturevalue(fixture)
    kwargs = MERGE_CASES[fixture]
    merged_hf = _build("hf", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    merged_ours = _build("ours", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    hf_state, our_state = merged_hf.state_dict(), merged_ours.state_dict()
    assert hf_state.keys() == our_state.keys()
    for key in hf_state:
        assert torch.equal(hf_state[key], our_state[key]), key


def test_seeded_random_init_matches_hf(tiny_llama, input_ids):
    kwargs = {"task_type": "CAUSAL_LM", "init_ia3_weights": False}
    torch.manual_seed(11)
    hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.IA3Config(**kwargs))
    torch.manual_seed(11)
    ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), IA3Config(**kwargs))
    assert torch.equal(forward_output(hf, input_ids), forward_output(ours, input_ids))


def test_several_adapters_both_directions(mlp, randomize, tmp_path):
    first = {"target_modules": ["lin0", "lin1"], "feedforward_modules": ["lin1"]}
    # lin1 is feed-forward for both adapters: see the next test for what HF does when they disagree.
    second = {"target_modules": ["lin1", "lin2"], "feedforward_modules": ["lin1"]}
    several_adapters_both_ways(
        lambda: copy.deepcopy(mlp),
        {"default": IA3Config(**first), "other": IA3Config(**second)},
        {"default": peft.IA3Config(**first), "other": peft.IA3Config(**second)},
        lambda model: forward_output(model, _inputs("mlp")),
        tmp_path,
        prepare=randomize,
    )


def test_feedforward_is_per_adapter_unlike_hf_layer_flag(mlp):
    """HF fixes feed-forward-ness when a layer is first wrapped, so a second adapter inherits it.

    Its files then only load in a model where the first adapter exists. We follow each adapter's
    own config, which is what HF does when that adapter is loaded on its own.
    """
    first = {"target_modules": ["lin0", "lin1"], "feedforward_modules": ["lin1"]}
    second = {"target_modules": ["lin1"], "feedforward_modules": []}
    hf = peft.get_peft_model(copy.deepcopy(mlp), peft.IA3Config(**first))
    hf.add_adapter("other", peft.IA3Config(**second))
    hf_alone = peft.get_peft_model(copy.deepcopy(mlp), peft.IA3Config(**second))
    ours = peft_core.get_peft_model(copy.deepcopy(mlp), IA3Config(**first))
    ours.add_adapter("other", IA3Config(**second))
    assert hf.base_model.model.lin1.ia3_l["other"].shape == (1, 16)  # inherited from "default"
    assert hf_alone.base_model.model.lin1.ia3_l["default"].shape == (16, 1)
    assert ours.base_model.model.lin1.ia3_l["other"].shape == (16, 1)
