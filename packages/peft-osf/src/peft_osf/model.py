"""`OSFModel`: puts an `OSFLinear` on every targeted `nn.Linear`, with its effective rank resolved."""

from __future__ import annotations

import re

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.tuners.linear_targets import is_transformers_conv1d

from .config import OSFConfig
from .defaults import OSF_TARGETS
from .layer import OSFLinear


def resolve_rank(value: int | float | None, min_dim: int) -> int:
    """Hugging Face PEFT's rule: None is half of `min_dim`; a float in (0, 1] a fraction of it; anything
    else a count (truncated); the result is clipped to [0, min_dim]."""
    if value is None:
        rank = min_dim // 2
    elif isinstance(value, float) and 0 < value <= 1:
        rank = int(min_dim * value)
    else:
        rank = int(value)
    return max(min(min_dim, rank), 0)


class OSFModel(BaseTuner):
    prefix = "osf_"
    config_cls = OSFConfig
    default_target_modules = OSF_TARGETS

    def _prepare_adapter_config(self, config: OSFConfig, model: nn.Module) -> OSFConfig:
        if config.target_modules is None:
            from peft_core.tuners.tuner import model_type_of

            if OSF_TARGETS.get(model_type_of(model) or "") is None:
                config.target_modules = "all-linear"  # Hugging Face PEFT's fallback for unknown architectures
        return super()._prepare_adapter_config(config, model)

    def effective_rank_for(self, config: OSFConfig, key: str, min_dim: int) -> int:
        value = config.effective_rank
        for pattern, override in (config.rank_pattern or {}).items():
            if re.search(pattern, key):
                value = override
                break
        return resolve_rank(value, min_dim)

    def _create_and_replace(self, config: OSFConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str) -> None:
        base = target.get_base_layer() if isinstance(target, OSFLinear) else target
        if not isinstance(base, nn.Linear):
            hint = " (Hugging Face PEFT skips such targets silently, leaving them unadapted)" if is_transformers_conv1d(base) else ""
            raise ConfigError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by OSF, which adapts "
                f"torch.nn.Linear only{hint}. Adjust target_modules."
            )
        rank = self.effective_rank_for(config, current_key, min(base.weight.shape))
        if rank <= 0:
            raise ConfigError(
                f"OSF's effective rank for {current_key!r} (weight {tuple(base.weight.shape)}) resolves to {rank}; "
                f"it must be at least 1. Raise effective_rank or its rank_pattern entry."
            )
        init = config.init_weights is not False
        if isinstance(target, OSFLinear):
            target.update_layer(adapter_name, rank, init)
            return
        layer = OSFLinear(target)
        layer.update_layer(adapter_name, rank, init)
        setattr(parent, target_name, layer)
