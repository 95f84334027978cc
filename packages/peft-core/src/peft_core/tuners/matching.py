"""Which modules a config targets: Hugging Face PEFT's matching rules, reproduced exactly.

- list `target_modules`: exact name or `.`-bounded suffix (`"self_attn.q_proj"`, `"q_proj"`);
- string `target_modules`: `re.fullmatch` against the full module name;
- `"all-linear"`: every linear layer except the output head;
- `exclude_modules`: same rules, checked first;
- `layers_to_transform` / `layers_pattern`: restrict suffix matches to some layer indices;
- `rank_pattern` / `alpha_pattern`: the first regex (in insertion order) anchored at a dot boundary.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from torch import nn

from .. import patterns
from ..errors import ConfigError
from .linear_targets import is_transformers_conv1d

ALL_LINEAR = "all-linear"


def _suffix_hit(key: str, names: Iterable[str] | set[str]) -> str | None:
    """The entry of `names` equal to `key` or to one of its dotted suffixes."""
    names = names if isinstance(names, (set, frozenset, dict)) else set(names)
    if key in names:
        return key
    start = key.find(".")
    while start != -1:
        suffix = key[start + 1 :]
        if suffix in names:
            return suffix
        start = key.find(".", start + 1)
    return None


MODULES_TO_SAVE_TEMPLATE = r"(^|.*\.){}($|\..*)"
LAYERS_PATTERN_TEMPLATE = r"(^|.*?\.){}\.(\d+)\."
PATTERN_KEY_TEMPLATE = r"(.*\.)?({})$"


def is_excluded(exclude_modules: str | Iterable[str] | None, key: str, field: str = "exclude_modules") -> bool:
    if not exclude_modules:
        return False
    if isinstance(exclude_modules, str):
        return patterns.fullmatch(exclude_modules, key, field)
    return _suffix_hit(key, exclude_modules) is not None


def is_in_modules_to_save(modules_to_save: Iterable[str] | None, key: str, field: str = "modules_to_save") -> bool:
    """Modules wrapped for saving are never targeted (HF's unescaped `(^|.*\\.)m($|\\..*)` rule)."""
    if not modules_to_save:
        return False
    return any(patterns.match(m, key, field, MODULES_TO_SAVE_TEMPLATE) for m in modules_to_save)


def layer_index(
    key: str, layers_pattern: str | Sequence[str] | None, field: str = "layers_pattern"
) -> int | None:
    """The layer number in `key`: the first `.<digits>.` segment (after `layers_pattern` when given)."""
    if layers_pattern is None or layers_pattern == []:
        match = re.match(r".*?\.[^.]*\.(\d+)\.", key)  # lazy: the first index, not an expert index
        return int(match.group(1)) if match else None
    layer_patterns = [layers_pattern] if isinstance(layers_pattern, str) else list(layers_pattern)
    for pattern in layer_patterns:
        match = patterns.match(pattern, key, field, LAYERS_PATTERN_TEMPLATE)
        if match:
            return int(match.group(2))
    return None


def check_layers_to_transform(config: Any, names: Sequence[str]) -> None:
    """Refuse `layers_to_transform` indices the model does not have, naming the indices it has.

    The model's layers are the indices `layer_index` finds in its module names (after
    `layers_pattern` when given). Models without numbered layers are left to the "nothing matched"
    error. Applies only where `layers_to_transform` takes part in matching (list targets).
    """
    from ..errors import ConfigError

    layers = getattr(config, "layers_to_transform", None)
    if layers is None or layers == [] or isinstance(getattr(config, "target_modules", None), str):
        return
    requested = [layers] if isinstance(layers, int) else list(layers)
    pattern = getattr(config, "layers_pattern", None)
    field = patterns.field_label(config, "layers_pattern")
    available = {i for i in (layer_index(n, pattern, field) for n in names if n) if i is not None}
    if not available:
        return
    missing = sorted({i for i in requested if i not in available})
    if missing:
        where = f" (found through layers_pattern={pattern!r})" if pattern else ""
        raise ConfigError(
            f"layers_to_transform={layers!r} asks for layer indices {missing} that the model does not have: its "
            f"layers{where} are numbered {_describe_indices(sorted(available))}. Use indices in that range."
        )


def _describe_indices(indices: Sequence[int]) -> str:
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}..{indices[-1]}"
    return ", ".join(str(i) for i in indices)


def matches_target(config: Any, key: str) -> bool:
    """Whether module `key` is targeted by `config` (exclusions are checked by the caller)."""
    targets = config.target_modules
    if isinstance(targets, str):
        return patterns.fullmatch(targets, key, patterns.field_label(config, "target_modules"))
    if not targets:
        return False
    targets = targets if isinstance(targets, (set, frozenset)) else set(targets)
    if key in targets:
        return True  # exact full-name matches ignore layers_to_transform
    if _suffix_hit(key, targets) is None:
        return False
    layers = getattr(config, "layers_to_transform", None)
    if layers is None or layers == []:
        return True
    index = layer_index(key, getattr(config, "layers_pattern", None), patterns.field_label(config, "layers_pattern"))
    if index is None:
        return False
    return index == layers if isinstance(layers, int) else index in layers


def strip_base_layers(name: str) -> str:
    """`name` with every `.base_layer` segment removed: the path of a module as the user's model names
    it, even when adapter layers now wrap it (`mlp.experts.base_layer` -> `mlp.experts`)."""
    while ".base_layer" in name:
        head, _, tail = name.rpartition(".base_layer")
        name = head + tail
    return name


def match_parameter_targets(
    target_parameters: Iterable[str] | None, named: Sequence[tuple[str, nn.Module]]
) -> list[tuple[str, str, str]]:
    """Parameters selected by `target_parameters` (Hugging Face PEFT's rule): `(holder, name, key)` with
    `holder` the path of the module that owns the parameter (possibly inside adapter layers), `name` the
    parameter's attribute name and `key` its dotted name in the user's model (`mlp.experts.down_proj`).

    A parameter matches when `key` equals an entry or ends with `"." + entry`. Order: modules in
    `named` order, parameters in registration order (the order in which layers wrap them)."""
    if not target_parameters:
        return []
    wanted = set(target_parameters)
    found: list[tuple[str, str, str]] = []
    for holder, module in named:
        for param_name, param in module._parameters.items():
            if param is None:
                continue
            unwrapped = strip_base_layers(holder)
            key = f"{unwrapped}.{param_name}" if unwrapped else param_name
            if _suffix_hit(key, wanted) is not None:
                found.append((holder, param_name, key))
    return found


def pattern_value(
    key_patterns: Mapping[str, Any] | None, key: str, default: Any, field: str = "rank_pattern/alpha_pattern"
) -> Any:
    """First `rank_pattern`/`alpha_pattern` entry whose regex matches the end of `key` at a dot boundary."""
    if key_patterns:
        for pattern, value in key_patterns.items():
            if patterns.match(pattern, key, field, PATTERN_KEY_TEMPLATE):
                return value
    return default


def is_linear_like(module: nn.Module) -> bool:
    """nn.Linear, a quantized linear layer, transformers' GPT-2 `Conv1D`, or an adapter layer wrapping one."""
    if isinstance(module, nn.Linear):
        return True
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        from .quantization import is_quantized

        if is_quantized(module):  # a quantized linear that is no nn.Linear subclass (HQQ's HQQLinear)
            return True
    if is_transformers_conv1d(module):
        return True
    from .layer import BaseTunerLayer

    return isinstance(module, BaseTunerLayer) and is_linear_like(module.get_base_layer())


def output_head_names(model: nn.Module, names_by_module: Mapping[int, str], task_type: str | None) -> set[str]:
    """Names of modules `all-linear` leaves alone: the output embedding, or the classifier head."""
    getter = getattr(model, "get_output_embeddings", None)
    out = getter() if callable(getter) else None
    if out is not None and id(out) in names_by_module:
        return {names_by_module[id(out)]}
    if task_type == "SEQ_CLS":
        for name in names_by_module.values():
            if name.split(".")[-1] in ("score", "classifier"):
                return {name}
    return set()


def compact_target_names(targets: set[str], all_names: Sequence[str]) -> set[str]:
    """Smallest dotted suffixes that still select exactly `targets` (HF compacts lists of >= 20)."""
    others = [n for n in all_names if n and n not in targets]
    chosen: set[str] = set()
    for name in sorted(targets):
        parts = name.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if not any(o == suffix or o.endswith("." + suffix) for o in others):
                chosen.add(suffix)
                break
    return chosen if len(chosen) < len(targets) else set(targets)


def describe_candidates(names: Sequence[str], limit: int = 12) -> str:
    """A few leaf module names that exist, to put in a 'nothing matched' error."""
    leaves: list[str] = []
    for name in names:
        leaf = name.rsplit(".", 1)[-1]
        if name and not leaf.isdigit() and leaf not in leaves:
            leaves.append(leaf)
    return ", ".join(repr(n) for n in leaves[:limit])


def check_layer_selection(config: Any, regex_excludes_layers: bool = True, pattern_needs_layers: bool = True) -> None:
    """Hugging Face PEFT's rules for choosing layers by index, as each method's HF config applies them:
    `layers_to_transform` / `layers_pattern` refused with a regex `target_modules` (a regex already says
    which layers; `regex_excludes_layers`), and `layers_pattern` only with `layers_to_transform`
    (`pattern_needs_layers`)."""
    name = type(config).__name__
    if regex_excludes_layers and isinstance(getattr(config, "target_modules", None), str):
        for field in ("layers_to_transform", "layers_pattern"):
            if getattr(config, field, None) is not None:
                raise ConfigError(f"{name}: `{field}` cannot be used when `target_modules` is a str (a regex).")
    if pattern_needs_layers and getattr(config, "layers_pattern", None) and getattr(config, "layers_to_transform", None) is None:
        raise ConfigError(f"{name}.layers_pattern needs layers_to_transform; set both or neither.")
