"""Tiny models and reference computations for peft-p-tuning's tests (put on sys.path by conftest)."""

from __future__ import annotations

import json
import os

import torch


def make_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def make_t5(seed: int = 0):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=128,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        initializer_factor=10.0,  # larger weights: greedy decoding is not stuck on one token
    )
    return T5ForConditionalGeneration(config).eval()


def make_bert(kind: str = "SEQ_CLS", seed: int = 0):
    import transformers

    classes = {
        "SEQ_CLS": transformers.BertForSequenceClassification,
        "TOKEN_CLS": transformers.BertForTokenClassification,
        "QUESTION_ANS": transformers.BertForQuestionAnswering,
        "FEATURE_EXTRACTION": transformers.BertModel,
    }
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        num_labels=2 if kind == "QUESTION_ANS" else 3,
    )
    return classes[kind](config).eval()


MAKERS = {
    "CAUSAL_LM": make_llama,
    "SEQ_2_SEQ_LM": make_t5,
    "SEQ_CLS": lambda: make_bert("SEQ_CLS"),
    "TOKEN_CLS": lambda: make_bert("TOKEN_CLS"),
    "QUESTION_ANS": lambda: make_bert("QUESTION_ANS"),
    "FEATURE_EXTRACTION": lambda: make_bert("FEATURE_EXTRACTION"),
}


def batch():
    torch.manual_seed(5)
    ids = torch.randint(2, 128, (2, 5))
    mask = torch.ones_like(ids)
    mask[0, 0] = 0  # one padded row
    return ids, mask


def inputs_for(task: str) -> dict:
    ids, mask = batch()
    kwargs = {"input_ids": ids, "attention_mask": mask}
    if task == "SEQ_2_SEQ_LM":
        kwargs["decoder_input_ids"] = ids[:, :3]
    return kwargs


def main_output(out) -> torch.Tensor:
    for name in ("logits", "start_logits", "last_hidden_state"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    return out[0]


@torch.no_grad()
def run(model, task: str) -> torch.Tensor:
    return main_output(model(**inputs_for(task)))


@torch.no_grad()
def greedy_by_forward(model, task: str, steps: int = 4) -> torch.Tensor:
    """Greedy decoding by re-running the full forward pass each step (no cache): the reference for generate()."""
    ids, mask = batch()
    if task == "SEQ_2_SEQ_LM":
        seq = torch.zeros(ids.shape[0], 1, dtype=torch.long)
        for _ in range(steps):
            nxt = model(input_ids=ids, attention_mask=mask, decoder_input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq
    seq, am = ids.clone(), mask.clone()
    for _ in range(steps):
        nxt = model(input_ids=seq, attention_mask=am).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
        am = torch.cat([am, torch.ones_like(nxt)], 1)
    return seq


def read_config(directory) -> dict:
    with open(os.path.join(directory, "adapter_config.json")) as fh:
        return json.load(fh)


def comparable_config(data: dict) -> dict:
    """Parsed adapter_config.json without the writer's version; list-valued set fields as sets."""
    data = dict(data)
    data.pop("peft_version", None)
    if data.get("modules_to_save") is not None:
        data["modules_to_save"] = sorted(set(data["modules_to_save"]))
    return data


def read_weights(directory) -> dict:
    from safetensors.torch import load_file

    return load_file(os.path.join(directory, "adapter_model.safetensors"))
