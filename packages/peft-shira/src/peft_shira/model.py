"""`ShiraModel`: puts a `ShiraLinear` around every targeted `nn.Linear`, with the mask the config picks."""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out

from .config import ShiraConfig
from .defaults import TARGET_MODULES
from .layer import ShiraLinear
from .masks import call_mask_fn, indices_from_mask, shira_parameter_count

INDICES_SUFFIX = ".shira_indices"


class ShiraModel(BaseTuner):
    prefix = "shira_"
    config_cls = ShiraConfig
    default_target_modules = TARGET_MODULES

    def _create_and_replace(
        self,
        config: ShiraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        base = target.get_base_layer() if isinstance(target, ShiraLinear) else target
        if not isinstance(base, nn.Linear) or not base.weight.is_floating_point() or _is_quantized(base):
            raise ConfigError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by SHiRA; only torch.nn.Linear "
                f"with a floating-point weight is. Adjust target_modules."
            )
        if not isinstance(target, ShiraLinear):
            reconcile_fan_in_fan_out(config, target)
        indices = self._mask_indices(config, base, current_key)
        if isinstance(target, ShiraLinear):
            target.update_layer(adapter_name, config.r, indices, config.init_weights)
            return
        layer = ShiraLinear(target)
        layer.update_layer(adapter_name, config.r, indices, config.init_weights)
        setattr(parent, target_name, layer)

    @staticmethod
    def _mask_indices(config: ShiraConfig, base: nn.Linear, key: str) -> torch.Tensor | None:
        mask_fn = getattr(config, "mask_fn", None)
        if mask_fn is None or base.weight.is_meta:
            return None  # filled from the saved file (or refused at use, see ShiraLinear._indices)
        kwargs = {"bias": base.bias is not None}
        if config.mask_type == "random":
            kwargs["random_seed"] = config.random_seed
        count = shira_parameter_count(config.r, base.in_features, base.out_features)
        if count > base.in_features * base.out_features:
            raise ConfigError(
                f"SHiRA r={config.r} asks for r*(in+out) = {count} trained entries of {key!r}, which has only "
                f"{base.in_features * base.out_features} weights; lower r."
            )
        mask = call_mask_fn(mask_fn, base, config.r, **kwargs)
        if isinstance(mask, torch.Tensor) and tuple(mask.shape) != (base.out_features, base.in_features):
            raise ConfigError(
                f"SHiRA mask for {key!r} has shape {tuple(mask.shape)}; it must match the weight "
                f"({base.out_features}, {base.in_features})."
            )
        return indices_from_mask(mask, count, repr(key))

    def remap_state_dict_for_load(
        self, adapter_name: str, state: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        """Files written by HF PEFT on Windows store the indices as float32: read them back as int32."""
        spec = getattr(state, "spec", None)
        floats = []
        for key in state:
            if not key.endswith(INDICES_SUFFIX):
                continue
            found = spec(key) if spec is not None else None
            dtype = found[0] if found is not None else state[key].dtype
            if dtype.is_floating_point:
                floats.append(key)
        return _IntIndices(state, set(floats)) if floats else state


def _is_quantized(module: nn.Module) -> bool:
    return type(module).__module__.split(".")[0] in ("bitsandbytes", "torchao", "hqq")


class _IntIndices(Mapping[str, torch.Tensor]):
    """`state` with some float index tensors read as int32 (exact integers only)."""

    def __init__(self, state: Mapping[str, torch.Tensor], keys: set[str]) -> None:
        self._state, self._keys = state, keys

    def __getitem__(self, key: str) -> torch.Tensor:
        value = self._state[key]
        if key not in self._keys:
            return value
        if not torch.equal(value, value.round()):
            raise ConfigError(f"SHiRA indices {key!r} in the adapter file are not whole numbers; the file is corrupt.")
        return value.to(torch.int32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def spec(self, key: str) -> tuple[torch.dtype, tuple[int, ...]] | None:
        inner = getattr(self._state, "spec", None)
        found = inner(key) if inner is not None else None
        if key in self._keys and found is not None:
            return torch.int32, found[1]
        return found

    def read_into(self, key: str, dest: torch.Tensor) -> bool:
        inner = getattr(self._state, "read_into", None)
        if key in self._keys or inner is None:
            return False
        return inner(key, dest)
