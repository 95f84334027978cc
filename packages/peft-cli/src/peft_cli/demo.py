"""The demo engine: fine-tune a tiny causal LM with any installed method, save, reload, verify, merge.

Used by `peft demo` and by `docs/examples/quickstart.py`. Everything runs offline on a CPU: the
model is a small Llama built from a config with random weights, and the "tokenizer" is the set of
characters of a short text (by default `peft_cli/data/orchard.txt`, shipped with this package).

Only torch, transformers, tqdm and peft-core are imported here (no CLI library), so the engine can
be used from plain Python.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .errors import CliError

# The linear projections of a Llama block, then its two embeddings.
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
EMBEDDINGS = ["embed_tokens", "lm_head"]

# Per-method demo settings: config keyword arguments and a learning rate. A method not listed gets
# the generic recipe of `demo_config` (all projections, or 8 virtual tokens for prompt learning).
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    # a random base must learn its characters: LoRA on the embeddings too (this also saves their base
    # weights with the adapter, as Hugging Face PEFT does)
    "lora": {"config": {"r": 16, "lora_alpha": 32, "target_modules": PROJECTIONS + EMBEDDINGS}, "lr": 1e-2},
    "ia3": {"config": {"target_modules": PROJECTIONS, "feedforward_modules": ["down_proj"]}, "lr": 3e-2},
    "adalora": {"config": {"target_modules": PROJECTIONS, "init_r": 8, "target_r": 4}, "lr": 1e-2},
    # LayerNorm tuning adapts the norms: its registered default targets for Llama
    "ln_tuning": {"config": {}, "lr": 1e-2},
}
DISPLAY_NAMES = {"lora": "LoRA", "ia3": "(IA)³", "adalora": "AdaLoRA", "loha": "LoHa", "lokr": "LoKr", "vera": "VeRA"}
DEFAULT_LR = 1e-2
DEFAULT_PROMPT = "Wren wrote "


class DemoError(CliError):
    """The demo ran but a check failed (reloaded or merged outputs differ)."""


# -- data -------------------------------------------------------------------------------------------
def default_text() -> str:
    """The short text shipped with peft-cli (an original few-KB story, so nothing is downloaded)."""
    return resources.files("peft_cli").joinpath("data", "orchard.txt").read_text(encoding="utf-8")


@dataclass
class CharVocab:
    """A character-level vocabulary: the sorted set of characters of a text."""

    chars: list[str]

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index[c] for c in text if c in index], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(self.chars[i] for i in ids.tolist())


def batches(data: torch.Tensor, batch_size: int, block: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random windows of `block + 1` characters: inputs and next-character targets."""
    while True:
        starts = torch.randint(0, len(data) - block - 1, (batch_size,), generator=generator)
        window = torch.stack([data[s : s + block + 1] for s in starts.tolist()])
        yield window[:, :-1], window[:, 1:]


# -- model and config -------------------------------------------------------------------------------
def build_base_model(vocab_size: int, seed: int = 0) -> nn.Module:
    """A small Llama with random weights; the same weights for the same seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
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


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method.upper().replace("_", "-"))


def resolve_method(method: str):
    """The registered method `method`, imported through its entry point; a CliError if not installed."""
    from peft_core import PeftError
    from peft_core.discovery import load_method

    try:
        return load_method(method)
    except PeftError as exc:  # the message says what to install, never guessing a package name
        raise CliError(f"method {method!r} is not available: {_first_line(exc)}") from exc


def demo_config(method: str, steps: int = 60, **overrides: Any):
    """The config the demo uses for `method`: its DEMO_SETTINGS entry or a generic recipe."""
    spec = resolve_method(method)
    names = {f.name for f in dataclasses.fields(spec.config_cls) if f.init}
    kwargs: dict[str, Any] = {"task_type": "CAUSAL_LM"}
    if method in DEMO_SETTINGS:
        kwargs.update(DEMO_SETTINGS[method]["config"])
    elif "target_modules" in names:
        kwargs["target_modules"] = list(PROJECTIONS)
    elif "num_virtual_tokens" in names:
        kwargs["num_virtual_tokens"] = 8
    if "total_step" in names:  # AdaLoRA's rank schedule needs the number of steps
        kwargs.setdefault("total_step", max(steps, 1))
        kwargs.setdefault("tinit", 0)
        kwargs.setdefault("tfinal", 0)
    kwargs.update(overrides)
    kwargs = {k: v for k, v in kwargs.items() if k in names}
    try:
        return spec.config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CliError(f"could not build a demo config for {method!r} from {kwargs}: {_first_line(exc)}") from exc


# -- training ---------------------------------------------------------------------------------------
def train(
    model: nn.Module,
    data: torch.Tensor,
    steps: int,
    lr: float,
    *,
    desc: str = "fine-tuning",
    seed: int = 0,
    batch_size: int = 16,
    block: int = 64,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Next-character training of the trainable parameters with AdamW; returns the loss of each step."""
    from tqdm.auto import tqdm

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    stream = batches(data, batch_size=batch_size, block=block, generator=torch.Generator().manual_seed(seed))
    update_schedule = getattr(model, "update_and_allocate", None)  # AdaLoRA's rank allocation
    losses: list[float] = []
    with tqdm(range(steps), desc=desc, unit="step", disable=not progress) as bar:
        for step in bar:
            inputs, targets = next(stream)
            logits = model(input_ids=inputs).logits[:, -targets.shape[1] :]
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if callable(update_schedule):
                update_schedule(step)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if on_step is not None:
                on_step(step, loss.item())
    model.eval()
    return losses


# -- the whole run ----------------------------------------------------------------------------------
@dataclass
class DemoReport:
    method: str
    distribution: str | None
    version: str | None
    losses: list[float]
    trainable: int
    total: int
    adapter_dir: Path
    adapter_files: list[str]
    adapter_bytes: int
    reload_max_diff: float
    merge_max_diff: float | None
    merged_class: str | None
    merge_skipped: str | None
    prompt: str
    sample: str
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return display_name(self.method)


def run_demo(
    method: str = "lora",
    steps: int = 60,
    out: str | os.PathLike | None = None,
    *,
    text: str | None = None,
    prompt: str = DEFAULT_PROMPT,
    seed: int = 0,
    lr: float | None = None,
    progress: bool = True,
    desc: str | None = None,
    config_overrides: dict[str, Any] | None = None,
    started: float | None = None,
) -> DemoReport:
    """Fine-tune, save, reload (outputs must be identical), merge (outputs must agree) and sample.

    Raises `DemoError` when a check fails and `CliError` when the method is unavailable. `started`
    (a `time.perf_counter()` value taken before the heavy imports) makes the reported total include them.
    """
    from peft_core import PeftModel, get_peft_model
    from peft_core.discovery import installed_methods

    if steps < 1:
        raise CliError(f"--steps must be at least 1, got {steps}")
    started = time.perf_counter() if started is None else started
    method = method.lower().replace("-", "_")
    text = default_text() if text is None else text
    vocab = CharVocab.from_text(text)
    data = vocab.encode(text)
    if len(data) < 200:
        raise CliError(f"the training text is too short ({len(data)} characters; at least 200 are needed)")

    # 1. a small causal LM with random weights, and the method's adapter on it
    config = demo_config(method, steps=steps, **(config_overrides or {}))
    model = get_peft_model(build_base_model(len(vocab), seed), config)
    trainable, total = model.get_nb_trainable_parameters()

    # 2. train only the adapter
    t0 = time.perf_counter()
    rate = lr if lr is not None else DEMO_SETTINGS.get(method, {}).get("lr", DEFAULT_LR)
    losses = train(model, data, steps, rate, desc=desc or f"{display_name(method)} fine-tuning", seed=seed, progress=progress)
    train_seconds = time.perf_counter() - t0
    probe, _ = next(batches(data, batch_size=4, block=64, generator=torch.Generator().manual_seed(seed + 1)))
    with torch.no_grad():
        expected = model(input_ids=probe).logits

    # 3. save the adapter: adapter_config.json + adapter_model.safetensors
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="peft-demo-")
        out_dir = Path(tmp.name) / "adapter"
    else:
        out_dir = Path(out)
    try:
        model.save_pretrained(out_dir)
        files = sorted(os.listdir(out_dir))
        adapter_bytes = (out_dir / "adapter_model.safetensors").stat().st_size

        # 4. reload into a fresh copy of the same base: identical outputs
        t0 = time.perf_counter()
        reloaded = PeftModel.from_pretrained(build_base_model(len(vocab), seed), out_dir)
        with torch.no_grad():
            got = reloaded(input_ids=probe).logits
        load_seconds = time.perf_counter() - t0
    finally:
        if tmp is not None:
            tmp.cleanup()
    # bit-identical for almost every method; a method whose forward reorders float operations after a
    # reload (AdaLoRA's rank masks) may differ by rounding only
    reload_diff = (got - expected).abs().max().item()
    if reload_diff > 1e-5 * max(1.0, expected.abs().max().item()):
        raise DemoError(f"the reloaded adapter gives different outputs (max |diff| {reload_diff:.3g})")

    # 5. merge into the base weights where the method can: a plain transformers model
    final: nn.Module = reloaded
    merge_diff = merged_class = skipped = None
    if config.is_prompt_learning:
        skipped = "prompt-learning adapters add virtual tokens; there are no weights to merge into"
    elif not getattr(type(reloaded.base_model), "supports_merge", True):
        skipped = f"{display_name(method)} does not support merging"
    else:
        merged = copy.deepcopy(reloaded).merge_and_unload()
        with torch.no_grad():
            merged_logits = merged(input_ids=probe).logits
        merge_diff = (merged_logits - expected).abs().max().item()
        tolerance = 1e-4 * max(1.0, expected.abs().max().item())
        if merge_diff > tolerance:
            raise DemoError(f"the merged model differs from the adapter model by {merge_diff:.3g} (tolerance {tolerance:.1g})")
        final, merged_class = merged, type(merged).__name__

    # 6. a greedy sample from the fine-tuned model
    prompt_ids = vocab.encode(prompt)[None] if vocab.encode(prompt).numel() else data[:8][None]
    with torch.no_grad():
        sample_ids = final.generate(input_ids=prompt_ids, max_new_tokens=40, do_sample=False, pad_token_id=0)[0]
    info = next((m for m in installed_methods() if m.name == method), None)
    return DemoReport(
        method=method,
        distribution=info.distribution if info else None,
        version=info.version if info else None,
        losses=losses,
        trainable=trainable,
        total=total,
        adapter_dir=out_dir,
        adapter_files=files,
        adapter_bytes=adapter_bytes,
        reload_max_diff=0.0 if torch.equal(got, expected) else reload_diff,
        merge_max_diff=merge_diff,
        merged_class=merged_class,
        merge_skipped=skipped,
        prompt=vocab.decode(prompt_ids[0]),
        sample=vocab.decode(sample_ids),
        seconds={"train": train_seconds, "reload": load_seconds, "total": time.perf_counter() - started,
                 "cpu": time.process_time()},
    )


def format_report(report: DemoReport, title: str | None = None, saved: bool = True) -> str:
    """The report printed at the end of a demo run."""
    title = title or f"peft demo ({report.display})"
    where = f" in {report.adapter_dir}" if saved else ""
    pct = 100 * report.trainable / report.total if report.total else 0.0
    package = f" ({report.distribution} {report.version})" if report.distribution else ""
    if report.merge_max_diff is not None:
        merged = f"max |diff| {report.merge_max_diff:.2e} after merge_and_unload ({report.merged_class})"
    else:
        merged = f"skipped: {report.merge_skipped}"
    if report.reload_max_diff == 0.0:
        reloaded = "identical (torch.equal)"
    else:
        reloaded = f"equal up to rounding (max |diff| {report.reload_max_diff:.2e})"
    t = report.seconds
    lines = [
        f"{title} report",
        f"  method               {report.method}{package}",
        f"  loss                 {report.losses[0]:.3f} -> {report.losses[-1]:.3f} over {len(report.losses)} steps",
        f"  trainable parameters {report.trainable:,} of {report.total:,} ({pct:.2f}%)",
        f"  adapter file         adapter_model.safetensors, {report.adapter_bytes / 1024:.1f} KiB "
        f"({len(report.adapter_files)} files){where}",
        f"  reloaded outputs     {reloaded} on a fresh base model",
        f"  merged outputs       {merged}",
        f"  sample               {report.sample!r}",
        f"  time                 training {t['train']:.1f} s, reload {t['reload']:.2f} s, "
        f"total {t['total']:.1f} s ({t['cpu']:.1f} s CPU)",
    ]
    return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
