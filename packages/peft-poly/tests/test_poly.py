"""What is particular to Poly: the task router, the per-row mix of skills, task ids (missing, wrong,
expanded by generation) and Hugging Face PEFT's draws. The conformance kit checks the rest."""

from __future__ import annotations

import warnings

import pytest
import torch

from peft_core import PeftError, UnsupportedOperationError, get_peft_method, get_peft_model
from peft_core.testing import hf, models

from peft_poly import PolyConfig, PolyLinear, PolyRouter, TaskIdsError
from peft_poly.conformance import TaskMLP

torch.set_num_threads(1)


def _poly(config: PolyConfig, seed: int = 0, base=None):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(base if base is not None else TaskMLP(), config).eval()


def test_registered_with_its_entry_point():
    from importlib.metadata import entry_points

    method = get_peft_method("poly")
    assert method.config_cls is PolyConfig and method.prefix == "poly_"
    assert any(ep.name == "poly" for ep in entry_points(group="peft.methods"))


def test_router_in_eval_normalises_the_sigmoid_of_the_task_row():
    router = PolyRouter(n_tasks=3, n_skills=4, n_splits=2).eval()
    with torch.no_grad():
        router.module_logits.copy_(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)))
    weights = router(torch.tensor([2, 0, 2]))
    assert weights.shape == (3, 2, 4)
    for row, task in enumerate((2, 0, 2)):
        probs = torch.sigmoid(router.module_logits[task]).view(2, 4)
        torch.testing.assert_close(weights[row], probs / probs.sum(-1, keepdim=True), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))
    assert torch.equal(weights[0], weights[2]) and not torch.equal(weights[0], weights[1])


def test_router_in_training_samples_a_relaxed_bernoulli_mix():
    router = PolyRouter(n_tasks=2, n_skills=3, n_splits=1).train()
    router.reset()
    first, second = router(torch.tensor([0, 1])), router(torch.tensor([0, 1]))
    assert not torch.equal(first, second)  # stochastic skill selection
    torch.testing.assert_close(first.sum(-1), torch.ones(2, 1))
    assert (first > 0).all() and (first < 1).all()
    first.pow(2).sum().backward()
    assert router.module_logits.grad is not None and router.module_logits.grad.abs().max() > 0


def test_each_row_adds_its_tasks_mix_of_skills():
    config = PolyConfig(r=2, n_tasks=3, n_skills=3, n_splits=2, target_modules=["lin1"], init_weights=False)
    model = _poly(config)
    layer = model.base_model.model.lin1
    assert isinstance(layer, PolyLinear)
    lora_a, lora_b = layer.poly_lora_A["default"], layer.poly_lora_B["default"]
    assert lora_a.shape == (2, 3, 16, 2) and lora_b.shape == (2, 3, 2, 16)
    logits = layer.poly_router["default"].module_logits
    x = torch.randn(4, 5, 32, generator=torch.Generator().manual_seed(1))  # [batch, tokens, features]
    task_ids = torch.tensor([1, 0, 2, 1])
    from peft_poly.routing import using_task_ids

    with torch.no_grad(), using_task_ids(task_ids):
        got = layer(x)
    for row, task in enumerate(task_ids.tolist()):
        probs = torch.sigmoid(logits[task].double()).view(2, 3)
        w = probs / probs.sum(-1, keepdim=True)
        a = torch.cat([sum(w[q, s] * lora_a[q, s].double() for s in range(3)) for q in range(2)], dim=0)  # [in, r]
        b = torch.cat([sum(w[q, s] * lora_b[q, s].double() for s in range(3)) for q in range(2)], dim=1)  # [r, out]
        expected = layer.get_base_layer()(x[row]).double() + x[row].double() @ a @ b / 2
        torch.testing.assert_close(got[row].double(), expected, rtol=0, atol=1e-5)


def test_task_ids_must_be_given_and_fit():
    model = _poly(PolyConfig(r=2, n_tasks=2, target_modules=["lin0"]))
    x = torch.randn(3, 16)
    with pytest.raises(TaskIdsError, match="needs task_ids"):
        model(x)
    with pytest.raises(TaskIdsError, match="Only 2 tasks"):
        model(x, task_ids=torch.tensor([0, 1, 2]))
    with pytest.raises(TaskIdsError, match="Only 2 tasks"):
        model(x, task_ids=torch.tensor([0, -1, 1]))
    with pytest.raises(TaskIdsError, match="2 entries but the batch has 3 rows"):
        model(x, task_ids=torch.tensor([0, 1]))
    with pytest.raises(TaskIdsError, match="integers"):
        model(x, task_ids=torch.tensor([0.0, 1.0, 0.0]))
    assert issubclass(TaskIdsError, PeftError)
    with model.disable_adapter():
        model(x)  # no adapter, no task ids needed


def test_a_single_task_adapter_needs_no_task_ids():
    model = _poly(PolyConfig(r=2, n_tasks=1, n_skills=2, target_modules=["lin0", "lin1"], init_weights=False))
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(model(x), model(x, task_ids=torch.zeros(3, dtype=torch.long)))
    # beside an adapter with several tasks, the ids are needed again
    model.add_adapter("multi", PolyConfig(r=2, n_tasks=2, target_modules=["lin1"]))
    model.base_model.set_adapter(["default", "multi"])
    with pytest.raises(TaskIdsError, match="needs task_ids"):
        model(x)


def test_merging_is_refused():
    model = _poly(PolyConfig(r=2, n_tasks=2, target_modules=["lin0"]))
    with pytest.raises(UnsupportedOperationError, match="task id"):
        model.merge_and_unload()


def test_generation_with_beams_repeats_each_rows_task():
    """Generation expands every row for beam search; each copy keeps its row's task (HF's layer fails here)."""
    config = PolyConfig(r=2, n_tasks=2, n_skills=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_weights=False)
    model = _poly(config, base=models.LLAMA.build())
    ids = torch.randint(2, models.VOCAB, (2, 5), generator=torch.Generator().manual_seed(2))
    task_ids = torch.tensor([1, 0])
    kwargs = dict(max_new_tokens=3, do_sample=False, num_beams=2, pad_token_id=0)
    with torch.no_grad():
        both = model.generate(input_ids=ids, task_ids=task_ids, **kwargs)
        for row in range(2):
            alone = model.generate(input_ids=ids[row : row + 1], task_ids=task_ids[row : row + 1], **kwargs)
            assert torch.equal(both[row], alone[0])


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


@needs_hf
def test_seeded_initialisation_equals_hugging_faces():
    kwargs = dict(r=3, n_tasks=2, n_skills=3, n_splits=2, target_modules=["lin0", "lin1", "lin2"], init_weights=False)
    ours = _poly(PolyConfig(**kwargs), seed=4)
    torch.manual_seed(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(TaskMLP(), peft.PolyConfig(**kwargs))
    a = {k: v for k, v in ours.state_dict().items() if "poly_" in k}
    b = {k: v for k, v in theirs.state_dict().items() if "poly_" in k}
    assert set(a) == set(b) and len(a) == 9
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_hf
def test_greedy_generation_equals_hugging_faces():
    config = dict(r=2, n_tasks=3, n_skills=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_weights=False)
    ours = _poly(PolyConfig(**config), seed=3, base=models.LLAMA.build())
    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(models.LLAMA.build(), peft.PolyConfig(**config)).eval()
    ids = torch.randint(2, models.VOCAB, (3, 5), generator=torch.Generator().manual_seed(5))
    task_ids = torch.tensor([2, 0, 1])
    kwargs = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(ours.generate(input_ids=ids, task_ids=task_ids, **kwargs), theirs.generate(input_ids=ids, task_ids=task_ids, **kwargs))
