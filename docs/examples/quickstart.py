"""Quickstart: fine-tune a tiny causal language model with LoRA, save, reload, merge.

Runs offline on a CPU in well under a minute:

    uv run python docs/examples/quickstart.py            # 60 training steps
    uv run python docs/examples/quickstart.py --steps 5  # a quicker check

The model is a small Llama built from a config with random weights and a character-level
vocabulary taken from `data/tiny_corpus.txt`, so nothing is downloaded (no tokenizer, no weights).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from peft_core import PeftModel, get_peft_model
from peft_lora import LoraConfig

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data" / "tiny_corpus.txt"
BASE_SEED = 0


def build_base_model(vocab_size: int) -> LlamaForCausalLM:
    """The same random base weights every time: the seed is fixed."""
    torch.manual_seed(BASE_SEED)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(config).eval()


def batches(data: torch.Tensor, batch_size: int, block: int, generator: torch.Generator):
    """Random windows of `block + 1` characters: inputs and next-character targets."""
    while True:
        starts = torch.randint(0, len(data) - block - 1, (batch_size,), generator=generator)
        window = torch.stack([data[s : s + block + 1] for s in starts.tolist()])
        yield window[:, :-1], window[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    parser.add_argument("--out", type=Path, default=None, help="where to save the adapter (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()

    # 1. data: a character-level vocabulary from the corpus
    text = CORPUS.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)

    def encode(s: str) -> torch.Tensor:
        return torch.tensor([[index[c] for c in s]], dtype=torch.long)

    def decode(ids: torch.Tensor) -> str:
        return "".join(chars[i] for i in ids.tolist())

    # 2. a small causal LM with random weights, and a LoRA adapter on every projection and on both
    #    embeddings (a random base must learn its characters; targeting `embed_tokens`/`lm_head` also
    #    saves their base weights with the adapter, as Hugging Face PEFT does)
    base = build_base_model(len(chars))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"]
    config = LoraConfig(r=16, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    trainable, total = model.get_nb_trainable_parameters()

    # 3. train only the adapter
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    stream = batches(data, batch_size=16, block=64, generator=torch.Generator().manual_seed(0))
    losses: list[float] = []
    train_start = time.perf_counter()
    with tqdm(range(args.steps), desc="LoRA fine-tuning", unit="step") as bar:
        for _ in bar:
            inputs, targets = next(stream)
            logits = model(input_ids=inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
    train_seconds = time.perf_counter() - train_start
    model.eval()

    probe, _ = next(batches(data, batch_size=4, block=64, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        expected = model(input_ids=probe).logits

    # 4. save the adapter (only the LoRA weights and adapter_config.json)
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name) / "adapter"
    else:
        out = args.out
    model.save_pretrained(out)
    weights_file = out / "adapter_model.safetensors"
    adapter_bytes = weights_file.stat().st_size

    # 5. reload into a fresh copy of the same base model: identical outputs
    load_start = time.perf_counter()
    reloaded = PeftModel.from_pretrained(build_base_model(len(chars)), out)
    with torch.no_grad():
        got = reloaded(input_ids=probe).logits
    load_seconds = time.perf_counter() - load_start
    if not torch.equal(got, expected):
        raise SystemExit(f"reloaded adapter gives different outputs (max diff {(got - expected).abs().max():.3g})")

    # 6. merge the adapter into the base weights: a plain transformers model, same outputs up to rounding
    merged = copy.deepcopy(reloaded).merge_and_unload()
    with torch.no_grad():
        merged_logits = merged(input_ids=probe).logits
    merge_diff = (merged_logits - expected).abs().max().item()
    if merge_diff > 1e-4:
        raise SystemExit(f"merged model differs from the adapter model by {merge_diff:.3g}")

    # 7. a greedy sample from the fine-tuned model
    prompt = "The keeper "
    with torch.no_grad():
        sample = merged.generate(encode(prompt), max_new_tokens=40, do_sample=False)[0]

    print()
    print("LoRA quickstart report")
    print(f"  loss                 {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps")
    print(f"  trainable parameters {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)")
    print(f"  adapter file         {weights_file.name}, {adapter_bytes / 1024:.1f} KiB ({len(os.listdir(out))} files)")
    print(f"  reloaded outputs     identical (torch.equal) on a fresh base model")
    print(f"  merged outputs       max |diff| {merge_diff:.2e} after merge_and_unload ({type(merged).__name__})")
    print(f"  sample               {decode(sample)!r}")
    print(f"  time                 training {train_seconds:.1f} s, reload {load_seconds:.2f} s, "
          f"total {time.perf_counter() - started:.1f} s")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
