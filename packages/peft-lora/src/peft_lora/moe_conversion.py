"""LoRA on mixture-of-experts models whose experts transformers 5 fused into stacked parameters.

transformers 4 built Mixtral / Qwen3-MoE experts as one `nn.Linear` per expert and projection
(`experts.3.w1`, `experts.3.gate_proj`); transformers 5 stacks them into 3-D parameters
(`experts.gate_up_proj` = gate and up projections of every expert, `experts.down_proj`) and makes the
router a custom module (`mlp.gate.weight`). Hugging Face PEFT 0.21.2 (with transformers >= 5) keeps the
old recipes and adapters working, and so does this module, with the same results:

- `convert_config`: a config naming the old per-expert projections is rewritten, in place, before
  injection: those names leave `target_modules` and the fused parameters join `target_parameters`;
  a fused pair (gate + up) gets rank `2r` and alpha `2·alpha` (its two halves keep their scaling).
  A regex or `"all-linear"` is first resolved to leaf names (so `"all-linear"` covers the experts
  and the router on these models, as in Hugging Face PEFT).
- `convert_state_dict`: an adapter file with per-expert keys (written with transformers 4) is fused
  on load: A factors are concatenated along the rank, B factors of a fused pair go block-diagonal,
  experts are stacked into the `ParamWrapper` layout (see `layers/param.py`).

Applies to the model types Hugging Face PEFT converts: those transformers maps to the Mixtral or the
Qwen2-MoE checkpoint conversion (Mixtral, Qwen3-MoE, DeepSeek-V3, OLMoE, ...).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from peft_core.errors import AdapterLoadError, ConfigError
from peft_core.tuners.matching import is_excluded, is_in_modules_to_save, matches_target
from torch import nn


class _Scheme:
    """How one family of models renamed and fused its expert projections."""

    def __init__(
        self, targets: dict[str, str], fused: dict[str, tuple[str, ...]], renames: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.targets = targets  # old module name -> new target parameter
        self.fused = fused  # new parameter -> old projections, in fusion order
        self.renames = renames  # (old substring, new substring) in checkpoint keys


_SCHEMES = {
    "mixtral": _Scheme(
        {"gate": "gate.weight", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"},
        {"gate_up_proj": ("w1", "w3")},
        renames=((".block_sparse_moe.", ".mlp."),),
    ),
    "qwen2_moe": _Scheme(
        {"gate": "gate.weight", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj", "down_proj": "down_proj"},
        {"gate_up_proj": ("gate_proj", "up_proj")},
    ),
}


def scheme_for(model: nn.Module) -> _Scheme | None:
    """The conversion scheme of `model` (a transformers >= 5 model of a converted type), else None."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if not isinstance(model_type, str):
        return None
    try:
        from transformers.conversion_mapping import _MODEL_TO_CONVERSION_PATTERN, get_checkpoint_conversion_mapping
    except ImportError:  # transformers < 5 (nothing was fused) or not installed
        return None
    if get_checkpoint_conversion_mapping(model_type) is None:
        return None
    base = "mixtral" if model_type == "mixtral" else _MODEL_TO_CONVERSION_PATTERN.get(model_type)
    return _SCHEMES.get(base)


# -- config ---------------------------------------------------------------------------------------
def convert_config(
    config: Any, model: nn.Module, all_linear_names: Callable[[], set[str]]
) -> None:
    """Rewrite `config` in place for a fused-expert model (no-op for other models and, as in Hugging Face
    PEFT, for methods other than plain LoRA)."""
    if getattr(config, "peft_type", None) != "LORA":
        return
    scheme = scheme_for(model)
    if scheme is None:
        return
    if isinstance(config.target_modules, str):
        resolved = _resolve_string_targets(config, model, scheme, all_linear_names)
        if not resolved:
            return  # nothing matched: the usual "not found" error follows
        config.target_modules = resolved
    config.rank_pattern = config.rank_pattern or {}
    config.alpha_pattern = config.alpha_pattern or {}
    parameters = set(config.target_parameters or [])
    remaining: set[str] = set()
    present: dict[str, set[str]] = {new: set() for new in scheme.fused}
    for target in config.target_modules or []:
        hit = next(
            ((old, new) for old, new in scheme.targets.items() if target == old or target.endswith(f".{old}")), None
        )
        if hit is None:
            remaining.add(target)
            continue
        old, new = hit
        parameters.add(new)
        if new in scheme.fused:
            present[new].add(old)
    for new, required in scheme.fused.items():
        got = present[new]
        if 0 < len(got) < len(required):
            raise ConfigError(
                f"Cannot target {', '.join(sorted(got))} without {', '.join(sorted(set(required) - got))}: with "
                f"transformers >= 5 this model stores them fused in one parameter, {new!r}. Target all of "
                f"{list(required)} (or target_parameters=[{new!r}])."
            )
        if len(got) == len(required) > 1:
            key = rf".*\.{re.escape(new)}"
            config.rank_pattern[key] = config.r * len(required)
            config.alpha_pattern[key] = config.lora_alpha * len(required)
    config.target_parameters = parameters
    config.target_modules = remaining


def _resolve_string_targets(
    config: Any, model: nn.Module, scheme: _Scheme, all_linear_names: Callable[[], set[str]]
) -> set[str]:
    """Leaf names a regex (or `"all-linear"`) targets, the old expert projection names included."""
    if config.target_modules.lower() == "all-linear":
        return {name.rsplit(".", 1)[-1] for name in all_linear_names()} | set(scheme.targets)

    def hits(key: str) -> bool:
        if is_excluded(getattr(config, "exclude_modules", None), key):
            return False
        if is_in_modules_to_save(getattr(config, "modules_to_save", None), key):
            return False
        return matches_target(config, key)

    module_keys = [name for name, _ in model.named_modules()]
    param_keys = [name for name, _ in model.named_parameters()]
    matched = {key.rsplit(".", 1)[-1] for key in (*module_keys, *param_keys) if hits(key)}
    containers: dict[str, set[str]] = {}
    for name in param_keys:
        holder, _, leaf = name.rpartition(".")
        containers.setdefault(leaf, set()).add(holder)
    for old, new in scheme.targets.items():  # old names live inside a fused parameter: probe them there
        if old not in matched and any(hits(f"{holder}.{old}") for holder in containers.get(new, ())):
            matched.add(old)
    return matched


# -- state dict -----------------------------------------------------------------------------------
_EXPERT_KEY = re.compile(r"^(?P<holder>.*\.experts)\.(?P<expert>\d+)\.(?P<proj>[^.]+)\.lora_(?P<factor>[AB])\.weight$")


def convert_state_dict(
    state: Mapping[str, torch.Tensor], model: nn.Module, param_key: Callable[[str, str, str], str | None]
) -> Mapping[str, torch.Tensor]:
    """`state` with per-expert LoRA keys fused for the stacked parameters (unchanged if it has none).

    `param_key(holder, parameter, factor)` gives the file key of a factor ("A"/"B") of the wrapper
    adapting `holder.parameter` in the model (None if the model does not adapt it)."""
    peft_types = {getattr(c, "peft_type", None) for c in getattr(model, "peft_config", {}).values()}
    if peft_types and peft_types != {"LORA"}:
        return state
    scheme = scheme_for(model)
    if scheme is None:
        return state
    renamed = {_rename(key, scheme): key for key in state}
    groups: dict[tuple[str, str], dict[tuple[str, int], torch.Tensor]] = {}
    consumed: set[str] = set()
    for new_key, old_key in renamed.items():
        match = _EXPERT_KEY.match(new_key)
        if match is None or match["proj"] not in scheme.targets:
            continue
        parameter = scheme.targets[match["proj"]]
        groups.setdefault((match["holder"], parameter), {})[(match["proj"], int(match["expert"]), match["factor"])] = (
            state[old_key]
        )
        consumed.add(new_key)
    if not groups and all(new == old for new, old in renamed.items()):
        return state
    out: dict[str, Any] = {new: _Deferred(state, old) for new, old in renamed.items() if new not in consumed}
    for (holder, parameter), tensors in groups.items():
        projections = scheme.fused.get(parameter, (next(p for p, _, _ in tensors),))
        fused = _fuse(holder, parameter, projections, tensors)
        for factor, tensor in fused.items():
            key = param_key(holder, parameter, factor)
            if key is None:
                raise AdapterLoadError(
                    f"The adapter has per-expert LoRA weights for {holder}.*.{'/'.join(projections)} (a transformers 4 "
                    f"layout), but the model does not adapt {holder}.{parameter}; check the adapter's target_modules."
                )
            out[key] = tensor
    return _Lazy(out)


def _rename(key: str, scheme: _Scheme) -> str:
    for old, new in scheme.renames:
        key = key.replace(old, new)
    return key


def _fuse(
    holder: str, parameter: str, projections: Sequence[str], tensors: Mapping[tuple[str, int, str], torch.Tensor]
) -> dict[str, torch.Tensor]:
    experts = sorted({e for _, e, _ in tensors})
    expected = {(p, e, f) for p in projections for e in range(len(experts)) for f in "AB"}
    if set(tensors) != expected:
        missing = sorted(f"{holder}.{e}.{p}.lora_{f}" for p, e, f in expected - set(tensors))
        extra = sorted(f"{holder}.{e}.{p}.lora_{f}" for p, e, f in set(tensors) - expected)
        raise AdapterLoadError(
            f"Per-expert LoRA weights for {holder}.{parameter} are incomplete: missing {missing[:4]}, unexpected "
            f"{extra[:4]}. Every expert needs lora_A and lora_B for each of {list(projections)}."
        )
    with torch.no_grad():
        a = torch.stack(
            [torch.cat([tensors[(p, e, "A")] for p in projections], dim=0) for e in experts]
        )  # (E, n·r, in)
        b = torch.stack(
            [torch.block_diag(*[tensors[(p, e, "B")] for p in projections]) for e in experts]
        )  # (E, n·out, n·r)
        return {"A": a.flatten(0, 1).contiguous(), "B": b.permute(2, 0, 1).flatten(0, 1).T.contiguous()}


class _Deferred:
    """A tensor of the source mapping, read only when needed (lazily read files stay lazy)."""

    def __init__(self, source: Mapping[str, torch.Tensor], key: str) -> None:
        self.source, self.key = source, key


class _Lazy(Mapping[str, torch.Tensor]):
    """Converted tensors plus deferred pass-through ones; forwards the lazy-file methods."""

    def __init__(self, entries: dict[str, Any]) -> None:
        self._entries = entries

    def __getitem__(self, key: str) -> torch.Tensor:
        value = self._entries[key]
        return value.source[value.key] if isinstance(value, _Deferred) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def spec(self, key: str) -> tuple[torch.dtype, tuple[int, ...]] | None:
        value = self._entries[key]
        if isinstance(value, _Deferred):
            spec = getattr(value.source, "spec", None)
            return spec(value.key) if spec is not None else None
        return value.dtype, tuple(value.shape)

    def read_into(self, key: str, dest: torch.Tensor) -> bool:
        value = self._entries[key]
        if isinstance(value, _Deferred):
            read_into = getattr(value.source, "read_into", None)
            return read_into(value.key, dest) if read_into is not None else False
        return False
