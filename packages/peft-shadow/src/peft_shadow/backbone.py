"""Finding a decoder's block stack and building the shadow backbone beside it.

The "mirror" backbone is the base's own backbone class (e.g. `LlamaModel`) built from a copy of its
config with one layer (or `shadow_num_hidden_layers`) and the optional size overrides. Any other
`shadow_model` is a transformers checkpoint; a "projected" one (`model_type ==
"causal_lm_with_hidden_projection"`) also carries a trained shadow-width -> base-width projection.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import torch
from torch import nn

from peft_core import ConfigError

from .config import ShadowConfig

LAYER_STACK_NAMES = ("layers", "h")
BACKBONE_ATTRIBUTES = ("model", "transformer", "base_model", "decoder")
PROJECTED_MODEL_TYPE = "causal_lm_with_hidden_projection"


def _has_layer_stack(module: nn.Module) -> bool:
    return any(isinstance(getattr(module, n, None), nn.ModuleList) for n in LAYER_STACK_NAMES)


def find_backbone(model: nn.Module) -> nn.Module:
    """The module holding the decoder blocks (`LlamaModel` in `LlamaForCausalLM`, `OPTDecoder` in OPT)."""
    for attr in BACKBONE_ATTRIBUTES:
        backbone = getattr(model, attr, None)
        if not isinstance(backbone, nn.Module):
            continue
        nested = getattr(backbone, "decoder", None)
        if isinstance(nested, nn.Module) and _has_layer_stack(nested):
            return nested
        return backbone
    if _has_layer_stack(model):
        return model
    raise ConfigError(
        f"ShadowPEFT can't find the decoder backbone of {type(model).__name__} (no .model / .transformer holding "
        f".layers or .h). Set target_modules to the decoder blocks explicitly, e.g. r'.*\\.layers\\.\\d+$'."
    )


def decoder_blocks(backbone: nn.Module) -> tuple[nn.ModuleList, str]:
    for attr in LAYER_STACK_NAMES:
        blocks = getattr(backbone, attr, None)
        if isinstance(blocks, nn.ModuleList):
            return blocks, attr
    raise ConfigError(
        f"ShadowPEFT can't find the decoder blocks (.layers / .h) in {type(backbone).__name__}. Set target_modules "
        f"to the decoder blocks explicitly, e.g. r'.*\\.layers\\.\\d+$'."
    )


def default_targets(model: nn.Module) -> set[str]:
    """Every decoder block's module name (the blocks must be contiguous; all of them are)."""
    backbone = find_backbone(model)
    blocks, attr = decoder_blocks(backbone)
    prefix = next((name for name, module in model.named_modules() if module is backbone), "")
    base = f"{prefix}.{attr}" if prefix else attr
    return {f"{base}.{i}" for i in range(len(blocks))}


def hidden_size_of(config: Any) -> int:
    for attr in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    raise ConfigError(f"ShadowPEFT can't read the hidden size from the model config ({type(config).__name__}).")


def _set_first(config: Any, names: tuple[str, ...], value: int, field_name: str) -> None:
    for attr in names:
        if hasattr(config, attr):
            setattr(config, attr, int(value))
            return
    raise ConfigError(
        f"ShadowConfig.{field_name} can't be applied: {type(config).__name__} has none of {names}. Use a supported "
        f"decoder architecture or set shadow_model to a pretrained checkpoint."
    )


def _fit_per_layer_fields(config: Any) -> None:
    """Per-layer lists sized for the base (e.g. Qwen3's `layer_types`) are cut or padded to the new depth."""
    layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(layers, int):
        return
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        kinds = list(layer_types) or ["full_attention"]
        config.layer_types = (kinds + [kinds[-1]] * layers)[:layers]
    window = getattr(config, "max_window_layers", None)
    if isinstance(window, int) and window > layers:
        config.max_window_layers = layers


def build_mirror(model: nn.Module, config: ShadowConfig) -> nn.Module:
    base = find_backbone(model)
    cfg = copy.deepcopy(getattr(base, "config", None))
    if cfg is None:
        raise ConfigError(f"ShadowPEFT's mirror backbone needs a transformers model; {type(base).__name__} has no config.")
    _set_first(cfg, ("num_hidden_layers", "n_layer", "num_layers"), config.shadow_num_hidden_layers or 1, "shadow_num_hidden_layers")
    overrides = (
        ("shadow_hidden_size", ("hidden_size", "n_embd", "d_model")),
        ("shadow_intermediate_size", ("intermediate_size", "ffn_dim", "n_inner")),
        ("shadow_num_attention_heads", ("num_attention_heads", "n_head", "num_heads")),
    )
    for field_name, names in overrides:
        value = getattr(config, field_name)
        if value is not None:
            _set_first(cfg, names, value, field_name)
    _fit_per_layer_fields(cfg)
    return type(base)(cfg)


def load_pretrained(config: ShadowConfig) -> tuple[nn.Module, nn.Linear | None]:
    """A shadow backbone from a checkpoint, and its trained projection if it is a "projected" one."""
    from transformers import AutoModel
    from transformers.utils import cached_file

    with open(cached_file(config.shadow_model, "config.json"), encoding="utf-8") as fh:
        raw = json.load(fh)
    if raw.get("model_type") != PROJECTED_MODEL_TYPE:
        return AutoModel.from_pretrained(config.shadow_model), None
    return _load_projected(config.shadow_model, raw)


def _load_projected(name: str, raw: dict) -> tuple[nn.Module, nn.Linear]:
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel
    from transformers.utils import cached_file

    inner = dict(raw.get("shadow_model_config") or {})
    model_type = inner.pop("model_type", None)
    if model_type is None:
        raise ConfigError(f"{name!r} is a projected shadow checkpoint without shadow_model_config.model_type.")
    backbone = AutoModel.from_config(AutoConfig.for_model(model_type, **inner))
    weights = load_file(cached_file(name, "model.safetensors"))
    prefix = "shadow_model."
    backbone.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}, strict=True)
    weight = weights.get("shadow_hidden_projection.weight")
    if weight is None or weight.dim() != 2:
        raise ConfigError(f"{name!r} is a projected shadow checkpoint but has no 2-D 'shadow_hidden_projection.weight'.")
    projection = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        projection.weight.copy_(weight)
    return backbone, projection


def accepts_inputs_embeds(backbone: nn.Module) -> bool:
    import inspect

    try:
        return "inputs_embeds" in inspect.signature(backbone.forward).parameters
    except (TypeError, ValueError):
        return False


def drop_input_embeddings(backbone: nn.Module) -> None:
    """Remove the backbone's own embedding table: it is fed the base's (frozen) embeddings instead."""
    # only `embed_tokens` (as Hugging Face PEFT): other tables (GPT-2's `wte`) stay, and are saved
    if isinstance(getattr(backbone, "embed_tokens", None), nn.Module):
        del backbone.embed_tokens


def freeze_embeddings(backbone: nn.Module) -> None:
    """A pretrained backbone's embedding tables stay frozen (training them is not parameter-efficient)."""
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        with contextlib.suppress(Exception):
            table = getattr(backbone, getter)()
            if isinstance(table, nn.Module):
                table.requires_grad_(False)
