"""Quickstart: fine-tune a tiny causal language model with LoRA, save, reload, merge.

Runs offline on a CPU in well under a minute:

    uv run python docs/examples/quickstart.py            # 60 training steps
    uv run python docs/examples/quickstart.py --steps 5  # a quicker check

The model is a small Llama built from a config with random weights and a character-level
vocabulary taken from `data/tiny_corpus.txt`, so nothing is downloaded (no tokenizer, no weights).

The steps are those of `peft demo` (the demo engine, `peft_cli.demo.run_demo`, in
packages/peft-cli/src/peft_cli/demo.py); in API terms:

    config = LoraConfig(r=16, lora_alpha=32, target_modules=[...], task_type="CAUSAL_LM")
    model = get_peft_model(base, config)                          # only the adapter is trainable
    ...train...
    model.save_pretrained(out)                                    # adapter_config.json + adapter_model.safetensors
    reloaded = PeftModel.from_pretrained(fresh_base, out)         # identical outputs
    merged = reloaded.merge_and_unload()                          # a plain transformers model
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # the reported total includes importing torch and transformers

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data" / "tiny_corpus.txt"

from peft_cli.demo import CliError, format_report, run_demo  # noqa: E402  (uv run installs the workspace)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    parser.add_argument("--out", type=Path, default=None, help="where to save the adapter (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    try:
        report = run_demo(
            "lora",
            steps=args.steps,
            out=args.out,
            text=CORPUS.read_text(encoding="utf-8"),
            prompt="The keeper ",
            desc="LoRA fine-tuning",
            # LoRA on every projection and on both embeddings (a random base must learn its characters)
            config_overrides={"r": 16, "lora_alpha": 32, "target_modules": TARGETS},
            started=STARTED,
        )
    except CliError as exc:
        raise SystemExit(f"quickstart failed: {exc}") from None
    print()
    print(format_report(report, title="LoRA quickstart", saved=args.out is not None))


if __name__ == "__main__":
    main()
