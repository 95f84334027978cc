"""What is particular to multitask prompt tuning: per-task prompts from the shared prompt and the task
factors, task ids, the saved tensors, the source-task initialisations, the encoder-decoder layout and
generation, against independent computations and Hugging Face PEFT. The kit checks the rest."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from peft_core import AdapterLoadError, ConfigError, PeftModel, get_peft_method, get_peft_model
from peft_core.testing import hf
from peft_core.testing.tasks import batch, task_model

from peft_multitask_prompt_tuning import MultitaskPromptTuningConfig, TaskIdsError
from peft_multitask_prompt_tuning.conformance import T5_TASKS

torch.set_num_threads(1)


def _mpt(seed: int = 0, base=None, **kwargs):
    kwargs = {"task_type": "CAUSAL_LM", "num_virtual_tokens": 3, "num_tasks": 3, "num_ranks": 2, **kwargs}
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base if base is not None else task_model("CAUSAL_LM"), MultitaskPromptTuningConfig(**kwargs))
    with torch.no_grad():  # trained-like task factors (their init is tiny)
        encoder = model.base_model.prompt_encoder["default"]
        encoder.prefix_task_cols.normal_(0, 1, generator=torch.Generator().manual_seed(seed + 1))
        encoder.prefix_task_rows.normal_(0, 1, generator=torch.Generator().manual_seed(seed + 2))
    return model.eval()


def test_registered_with_its_entry_point():
    from importlib.metadata import entry_points

    method = get_peft_method("multitask_prompt_tuning")
    assert method.config_cls is MultitaskPromptTuningConfig and method.prefix == "multitask_prompt_tuning_"
    assert any(ep.name == "multitask_prompt_tuning" for ep in entry_points(group="peft.methods"))


def test_each_row_gets_the_shared_prompt_scaled_by_its_tasks_factors():
    model = _mpt()
    encoder = model.base_model.prompt_encoder["default"]
    shared, cols, rows = encoder.embedding.weight, encoder.prefix_task_cols, encoder.prefix_task_rows
    assert shared.shape == (3, 32) and cols.shape == (3, 3, 2) and rows.shape == (3, 2, 32)
    from peft_multitask_prompt_tuning.model import _call_with

    task_ids = torch.tensor([2, 0, 2])
    with torch.no_grad(), _call_with(task_ids):
        prompts = model.base_model.get_prompt(3)
    for row, task in enumerate(task_ids.tolist()):
        torch.testing.assert_close(prompts[row], shared * (cols[task] @ rows[task]), rtol=0, atol=1e-6)
    assert torch.equal(prompts[0], prompts[2]) and not torch.equal(prompts[0], prompts[1])
    # and the model sees them in front of the input
    ids, mask = batch(rows=3)
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask, task_ids=task_ids).logits
        base = model.get_base_model()
        embeds = torch.cat((prompts, base.get_input_embeddings()(ids)), dim=1)
        want = base(inputs_embeds=embeds, attention_mask=torch.cat((torch.ones(3, 3, dtype=mask.dtype), mask), 1)).logits
    assert torch.equal(got, want)


def test_task_ids_are_required_and_checked():
    model = _mpt()
    ids, mask = batch()
    with pytest.raises(TaskIdsError, match="needs task_ids"):
        model(input_ids=ids, attention_mask=mask)
    with pytest.raises(TaskIdsError, match=r"0\.\.2"):
        model(input_ids=ids, attention_mask=mask, task_ids=torch.tensor([0, 3]))
    with pytest.raises(TaskIdsError, match="one per row"):
        model(input_ids=ids, attention_mask=mask, task_ids=torch.tensor([1]))
    with model.disable_adapter():
        model(input_ids=ids, attention_mask=mask)  # the base model needs none


def test_a_single_task_adapter_needs_no_task_ids():
    model = _mpt(num_tasks=1)
    ids, mask = batch()
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = model(input_ids=ids, attention_mask=mask, task_ids=torch.zeros(ids.shape[0], dtype=torch.long)).logits
    assert torch.equal(got, want)


def test_the_file_holds_the_shared_prompt_and_the_task_factors(tmp_path):
    model = _mpt()
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    encoder = model.base_model.prompt_encoder["default"]
    assert sorted(saved) == ["prefix_task_cols", "prefix_task_rows", "prompt_embeddings"]
    assert torch.equal(saved["prompt_embeddings"], encoder.embedding.weight)  # the shared prompt, not a task's
    assert torch.equal(saved["prefix_task_cols"], encoder.prefix_task_cols)
    del saved["prefix_task_rows"]
    save_file(saved, tmp_path / "adapter_model.safetensors")
    with pytest.raises(AdapterLoadError, match="prefix_task_rows"):
        PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path)


@pytest.fixture
def source_file(tmp_path):
    """A trained-like source adapter with 3 tasks."""
    _mpt(seed=5).save_pretrained(tmp_path / "source")
    return str(tmp_path / "source" / "adapter_model.safetensors")


def test_average_and_exact_source_task_inits(source_file):
    source = load_file(source_file)
    for init, cols, rows in (
        ("AVERAGE_SOURCE_TASKS", source["prefix_task_cols"].mean(0, keepdim=True), source["prefix_task_rows"].mean(0, keepdim=True)),
        ("EXACT_SOURCE_TASK", source["prefix_task_cols"][1:2], source["prefix_task_rows"][1:2]),
    ):
        config = MultitaskPromptTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=1, num_ranks=2, prompt_tuning_init=init,
            prompt_tuning_init_state_dict_path=source_file, prompt_tuning_init_task=1,
        )
        encoder = get_peft_model(task_model("CAUSAL_LM"), config).base_model.prompt_encoder["default"]
        assert torch.equal(encoder.embedding.weight, source["prompt_embeddings"])
        assert torch.equal(encoder.prefix_task_cols, cols) and torch.equal(encoder.prefix_task_rows, rows)


def test_only_source_shared_takes_the_prompt_and_draws_fresh_factors(source_file):
    config = MultitaskPromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=5, prompt_tuning_init="ONLY_SOURCE_SHARED",
        prompt_tuning_init_state_dict_path=source_file,
    )
    encoder = get_peft_model(task_model("CAUSAL_LM"), config).base_model.prompt_encoder["default"]
    assert torch.equal(encoder.embedding.weight, load_file(source_file)["prompt_embeddings"])
    assert encoder.prefix_task_cols.shape == (5, 3, 1) and encoder.prefix_task_cols.abs().max() < 0.2


def test_source_inits_that_do_not_fit_are_refused(source_file, tmp_path):
    kwargs = dict(task_type="CAUSAL_LM", num_virtual_tokens=3, num_ranks=2, prompt_tuning_init_state_dict_path=source_file)
    with pytest.raises(ConfigError, match="num_tasks=1"):
        get_peft_model(task_model("CAUSAL_LM"), MultitaskPromptTuningConfig(num_tasks=2, prompt_tuning_init="AVERAGE_SOURCE_TASKS", **kwargs))
    with pytest.raises(ConfigError, match="has 3 tasks"):
        get_peft_model(
            task_model("CAUSAL_LM"),
            MultitaskPromptTuningConfig(num_tasks=1, prompt_tuning_init="EXACT_SOURCE_TASK", prompt_tuning_init_task=3, **kwargs),
        )
    with pytest.raises(ConfigError, match="prompt_tuning_init_state_dict_path"):
        MultitaskPromptTuningConfig(num_virtual_tokens=3, prompt_tuning_init="ONLY_SOURCE_SHARED")


def test_a_trained_target_loads_without_its_source_file(source_file, tmp_path):
    """The source only initialises training; a saved target adapter carries everything (HF reads the
    source file again on every load)."""
    import os

    config = MultitaskPromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=1, num_ranks=2,
        prompt_tuning_init="AVERAGE_SOURCE_TASKS", prompt_tuning_init_state_dict_path=source_file,
    )
    model = get_peft_model(task_model("CAUSAL_LM"), config).eval()
    model.save_pretrained(tmp_path / "target")
    os.remove(source_file)
    loaded = PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path / "target")
    ids, mask = batch()
    with torch.no_grad():
        kw = dict(input_ids=ids, attention_mask=mask, task_ids=torch.tensor([0, 0]))
        assert torch.equal(loaded(**kw).logits, model(**kw).logits)


def _greedy(model, task_ids: torch.Tensor, steps: int = 4) -> torch.Tensor:
    """Greedy decoding of `batch()` by repeated forward passes with `task_ids` (the reference for generate)."""
    ids, mask = batch()
    with torch.no_grad():
        for _ in range(steps):
            nxt = model(input_ids=ids, attention_mask=mask, task_ids=task_ids).logits[:, -1].argmax(-1, keepdim=True)
            ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    return ids


def test_generation_equals_greedy_decoding_by_forward():
    model = _mpt(seed=2)
    ids, mask = batch()
    task_ids = torch.tensor([1, 2])
    with torch.no_grad():
        got = model.generate(input_ids=ids, attention_mask=mask, task_ids=task_ids, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, _greedy(model, task_ids))


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


def _hf_mpt(base, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(base, peft.MultitaskPromptTuningConfig(**kwargs)).eval()


@needs_hf
def test_encoder_decoder_layout_equals_hugging_faces():
    """The decoder gets the second half of the virtual tokens and `-100` labels for them; HF builds the decoder
    inputs from the labels (and fails when decoder_input_ids are given)."""
    kwargs = dict(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3, num_tasks=3, num_ranks=2)
    ours = _mpt(base=T5_TASKS.build(), **kwargs)
    theirs = _hf_mpt(T5_TASKS.build(), **kwargs)
    theirs.prompt_encoder["default"].load_state_dict(ours.base_model.prompt_encoder["default"].state_dict())
    inputs = T5_TASKS.make_inputs()
    labels = torch.randint(2, 128, (4, 4), generator=torch.Generator().manual_seed(3))
    call = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels, task_ids=inputs["task_ids"])
    with torch.no_grad():
        a, b = ours(**call), theirs(**call)
        assert a.logits.shape == (4, 3 + 4, 128)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
        gen = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], task_ids=inputs["task_ids"], max_new_tokens=3, do_sample=False)
        assert torch.equal(ours.generate(**gen), theirs.generate(**gen))


@needs_hf
def test_causal_lm_generation_equals_greedy_decoding_of_hugging_faces_forward():
    """HF's own decoder-only generate re-inserts the virtual tokens at every step under transformers 5 (it looks
    for `past_key_values`, now `cache`), so its forward pass is the reference."""
    kwargs = dict(task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=3, num_ranks=2)
    ours = _mpt(seed=4, **kwargs)
    theirs = _hf_mpt(task_model("CAUSAL_LM"), **kwargs)
    theirs.prompt_encoder["default"].load_state_dict(ours.base_model.prompt_encoder["default"].state_dict())
    ids, mask = batch()
    task_ids = torch.tensor([2, 1])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ours.generate(input_ids=ids, attention_mask=mask, task_ids=task_ids, max_new_tokens=4, do_sample=False)
        assert torch.equal(got, _greedy(theirs, task_ids))


@needs_hf
def test_source_inits_equal_hugging_faces(source_file):
    for init in ("AVERAGE_SOURCE_TASKS", "EXACT_SOURCE_TASK", "ONLY_SOURCE_SHARED"):
        kwargs = dict(
            task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=1, num_ranks=2, prompt_tuning_init=init,
            prompt_tuning_init_state_dict_path=source_file, prompt_tuning_init_task=2,
        )
        torch.manual_seed(8)
        ours = get_peft_model(task_model("CAUSAL_LM"), MultitaskPromptTuningConfig(**kwargs)).base_model.prompt_encoder["default"]
        theirs = _hf_mpt(task_model("CAUSAL_LM"), seed=8, **kwargs).prompt_encoder["default"]
        for name, tensor in ours.named_parameters():
            assert torch.equal(tensor, dict(theirs.named_parameters())[name]), (init, name)


@needs_hf
def test_text_init_equals_hugging_faces(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "translate", "to", "french", "please"]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>").save_pretrained(tmp_path)
    kwargs = dict(
        task_type="CAUSAL_LM", num_virtual_tokens=4, num_tasks=2, prompt_tuning_init="TEXT",
        prompt_tuning_init_text="translate to french", tokenizer_name_or_path=str(tmp_path),
    )
    torch.manual_seed(9)
    ours = get_peft_model(task_model("CAUSAL_LM"), MultitaskPromptTuningConfig(**kwargs)).base_model.prompt_encoder["default"]
    theirs = _hf_mpt(task_model("CAUSAL_LM"), seed=9, **kwargs).prompt_encoder["default"]
    vocab = task_model("CAUSAL_LM").get_input_embeddings().weight
    assert torch.equal(ours.embedding.weight, vocab[[2, 3, 4, 2]])
    for name, tensor in ours.named_parameters():
        assert torch.equal(tensor, dict(theirs.named_parameters())[name]), name
