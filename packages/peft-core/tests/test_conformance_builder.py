"""The short way to declare conformance cases (`Conformance.of` + `on`, peft_core.testing.builder): it builds
the same cases as a hand-written declaration, fills what the tiny model knows and nothing the author gave,
and the kit runs it. Also the kit models it adds (`TinyModel.variant`, `LayerStack`, `grouped_conv`)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from peft_core import get_peft_model
from peft_core.testing import Case, Conformance, HuggingFace, models, on, run_conformance
from peft_core.testing.declare import PROMPT_LEARNING
from peft_core.tuners.prompt_config import PromptLearningConfig


def _short_toy(toy) -> Conformance:
    """The toy's declaration (tests/_support/peft_toy/conformance.py) written the short way."""
    return Conformance.of(
        toy.ToyConfig,
        on(models.MLP, task_type=None),
        on(
            models.LLAMA, r=4, target_modules=["q_proj", "v_proj"],
            second=dict(r=2, target_modules=["v_proj", "o_proj"]),
        ),
        random_init={"init_weights": False},
        bad_values=({"r": 65}, {"use_magic": True}),
    )


def test_the_short_declaration_equals_the_hand_written_one(toy):
    from peft_toy.conformance import conformance

    long, short = conformance(), _short_toy(toy)
    for f in dataclasses.fields(Conformance):
        if f.name != "cases":
            assert getattr(short, f.name) == getattr(long, f.name), f.name
    assert [(c.name, c.model) for c in short.cases] == [(c.name, c.model) for c in long.cases]
    for a, b in zip(long.cases, short.cases):
        assert a.config().to_dict() == b.config().to_dict()
        assert a.second_config().to_dict() == b.second_config().to_dict()
        assert (a.hf, a.exact, a.atol, a.rtol, tuple(a.bad_values)) == (b.hf, b.exact, b.atol, b.rtol, tuple(b.bad_values))


def test_the_kit_runs_a_short_declaration(toy):
    report = run_conformance(_short_toy(toy), checks=["declaration", "merge", "save_load"], cases=["mlp"], hf=False)
    assert report.ok, report.summary()
    assert {r.label for r in report.results if r.status == "passed"} == {"declaration", "merge[mlp]", "save_load[mlp]"}


def test_on_fills_the_models_targets_and_task_type_unless_given(toy):
    llama = on(models.LLAMA, r=3).bind(toy.ToyConfig).config()
    assert sorted(llama.target_modules) == ["down_proj", "q_proj", "v_proj"] and llama.task_type == "CAUSAL_LM"
    mlp = on(models.MLP, second=dict(target_modules=["lin1"])).bind(toy.ToyConfig)
    assert sorted(mlp.config().target_modules) == ["lin0", "lin1", "lin2"] and mlp.config().task_type is None
    assert sorted(mlp.second_config().target_modules) == ["lin1"]
    # given explicitly, None included, the author's value wins: None asks for the method's default targets
    defaults = on(models.LLAMA, target_modules=None, task_type=None).bind(toy.ToyConfig).config()
    assert defaults.target_modules is None and defaults.task_type is None
    assert on(models.BERT, r=2).bind(toy.ToyConfig).config().task_type == "SEQ_CLS"


def test_on_separates_case_options_from_config_fields(toy):
    case = on(models.MLP, "mlp-loose", r=3, hf=False, exact=False, atol=1e-3, bad_values=({"r": 0},)).bind(toy.ToyConfig)
    assert (case.name, case.hf, case.exact, case.atol, tuple(case.bad_values)) == ("mlp-loose", False, False, 1e-3, ({"r": 0},))
    assert case.config().r == 3 and case.second is None
    assert on(models.MLP).name == "mlp"


def test_each_config_gets_its_own_lists(toy):
    case = on(models.MLP, rank_pattern={"lin0": 2}).bind(toy.ToyConfig)
    first = case.config()
    first.rank_pattern["lin1"] = 5
    assert case.config().rank_pattern == {"lin0": 2}


def test_a_second_config_may_be_a_function(toy):
    case = on(models.MLP, second=lambda: toy.ToyConfig(r=7, target_modules=["lin2"])).bind(toy.ToyConfig)
    assert case.second_config().r == 7


def test_a_config_field_named_like_a_case_option_is_refused(toy):
    @dataclasses.dataclass
    class ExactConfig(toy.ToyConfig):
        exact: bool = False

    with pytest.raises(TypeError, match="Case options"):
        on(models.MLP, exact=True).bind(ExactConfig)


def test_of_derives_the_method_and_takes_ready_cases(toy):
    ready = Case("ready", models.MLP, lambda: toy.ToyConfig(target_modules=["lin0"]))
    suite = Conformance.of(toy.ToyConfig, ready, hf=True, merge=False)
    assert suite.method == "toy" and suite.cases == (ready,) and isinstance(suite.hf, HuggingFace) and not suite.merge
    assert Conformance.of(toy.ToyConfig, ready, method="other", hf=HuggingFace(exact=False)).hf.exact is False
    assert Conformance.of(toy.ToyConfig, ready).hf is None


def test_prompt_learning_configs_start_from_what_virtual_tokens_are(toy):
    @dataclasses.dataclass
    class VirtualConfig(PromptLearningConfig):
        peft_type: str = "VIRTUAL"

    suite = Conformance.of(VirtualConfig, on(models.LLAMA, num_virtual_tokens=3))
    assert {k: getattr(suite, k) for k in PROMPT_LEARNING} == PROMPT_LEARNING
    assert suite.method == "virtual" and suite.cases[0].config().task_type == "CAUSAL_LM"
    assert Conformance.of(VirtualConfig, merge=True).merge is True  # a declaration can still say otherwise
    assert Conformance.of(toy.ToyConfig).merge is True  # other methods: the class defaults


def test_a_variant_adds_inputs_and_keeps_what_the_model_knows():
    ids = torch.tensor([0, 1, 0, 1])
    tasks = models.LLAMA.variant("llama-tasks", task_ids=ids)
    inputs = tasks.make_inputs()
    assert torch.equal(inputs["task_ids"], ids) and torch.equal(inputs["input_ids"], models.LLAMA.make_inputs()["input_ids"])
    inputs["task_ids"].add_(5)  # a check changing its inputs can't change the next call's
    assert torch.equal(tasks.make_inputs()["task_ids"], ids)
    assert (tasks.name, tasks.targets, tasks.task_type, tasks.requires) == (
        "llama-tasks", models.LLAMA.targets, "CAUSAL_LM", ("transformers",)
    )
    assert models.LLAMA_TIED.factory is not models.LLAMA.factory and models.LLAMA_TIED.targets == models.LLAMA.targets


def test_layer_stack_keeps_its_relus_when_adapters_wrap_the_linears(toy):
    torch.manual_seed(0)
    stack = models.LayerStack(a=nn.Linear(4, 8), norm=nn.LayerNorm(8), b=nn.Linear(8, 3)).eval()
    x = torch.randn(5, 4)
    expected = stack.b(stack.norm(torch.relu(stack.a(x))))
    assert torch.equal(stack(x), expected)
    model = get_peft_model(stack, toy.ToyConfig(target_modules=["a", "b"]))  # a no-op adapter at init
    assert torch.allclose(model(x), expected)


def test_grouped_conv_models_run_with_their_inputs():
    model = models.grouped_conv("gc", 6, 8, 4, 6)
    out = model.build()(**model.make_inputs())
    assert out.shape == (4, 6) and model.targets == ("conv2", "point", "conv1", "lin")
