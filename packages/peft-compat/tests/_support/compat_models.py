"""Tiny models and data for peft-compat's tests, built from configs with fixed seeds (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def tiny_bert_seq_cls(seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, num_labels=3)
    return BertForSequenceClassification(config)


def tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=32))


# The base models the example programs (tests/programs/*.py) load by path, as a user's script loads a hub model.
PROGRAM_BASES = {"tiny-llama": tiny_llama, "tiny-bert-seq-cls": tiny_bert_seq_cls, "tiny-gpt2": tiny_gpt2}


def save_program_bases(folder: Path) -> Path:
    """Save each of PROGRAM_BASES (seed 0) to `folder/<name>`: Hugging Face PEFT's run and ours load the same files."""
    for name, build in PROGRAM_BASES.items():
        build().save_pretrained(folder / name)
    return folder


def tiny_t5(seed: int = 0):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(config)


def token_rows(n: int, length: int, vocab: int, seed: int = 0, extra_column: bool = True) -> list[dict]:
    """Rows of random token ids with labels (and a column no model accepts, which Trainer must drop)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(2, vocab, (length,), generator=g).tolist()
        row = {"input_ids": ids, "attention_mask": [1] * length, "labels": ids}
        if extra_column:
            row["text"] = " ".join(map(str, ids))
        rows.append(row)
    return rows


def word_tokenizer(vocab_size: int = 128):
    """A whitespace word-level fast tokenizer over the words "0" .. str(vocab_size - 4), built in memory."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<bos>": 3}
    vocab.update({str(i): i + 4 for i in range(vocab_size - 4)})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   bos_token="<bos>")
