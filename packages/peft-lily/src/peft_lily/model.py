"""`LilyModel`: puts a `LilyLinear` around every targeted `nn.Linear`, then links the layers.

After injection the adapter's layers are grouped by (the target name they matched, weight shape),
in module order: all layers of a group use the first layer's `lily_B`, and each block of `stride_A`
consecutive layers uses its first layer's `lily_A` (Hugging Face PEFT's `_post_injection_hook`). A
list target is the matched entry (the longest, where several match); a regex target is one group
per weight shape. Each layer keeps its own router. Shared modules are saved under every layer's key,
as HF writes them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from peft_core import BaseTuner
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.errors import unsupported_target

from .config import LilyConfig
from .layer import LilyLinear


class LilyModel(BaseTuner):
    prefix = "lily_"
    config_cls = LilyConfig
    default_target_modules = QUERY_VALUE_TARGETS
    supports_merge = False

    def inject_adapter(self, model: nn.Module, adapter_name: str, **options: Any) -> None:
        super().inject_adapter(model, adapter_name, **options)
        self._link_layers(self.peft_config[adapter_name], adapter_name)

    def _link_layers(self, config: LilyConfig, adapter_name: str) -> None:
        groups: dict[tuple, list[LilyLinear]] = {}
        for key, module in self.model.named_modules():
            if not isinstance(module, LilyLinear) or adapter_name not in module.lily_A:
                continue
            suffix = _matched_target(config.target_modules, key)
            if suffix is None:
                continue
            groups.setdefault((suffix, tuple(module.get_base_layer().weight.shape)), []).append(module)
        for layers in groups.values():
            shared_b = layers[0].lily_B[adapter_name]
            for index, layer in enumerate(layers):
                leader = layers[index - index % config.stride_A]
                layer.share(
                    adapter_name,
                    a=leader.lily_A[adapter_name] if leader is not layer else None,
                    b=shared_b if index else None,
                )

    def _create_and_replace(
        self, config: LilyConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = dict(r=config.r, num_B=config.num_B, scaling=config.scaling, init_weights=config.init_weights)
        if isinstance(target, LilyLinear):
            target.update_layer(adapter_name, **args)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise unsupported_target(current_key, base, "Lily", "torch.nn.Linear only (as in Hugging Face PEFT)")
        layer = LilyLinear(target)
        layer.update_layer(adapter_name, **args)
        setattr(parent, target_name, layer)


def _matched_target(targets: object, key: str) -> str | None:
    """The group name of a layer: a regex target as a whole, else the longest entry `key` ends with."""
    if isinstance(targets, str):
        return targets
    found = [t for t in targets or () if key.endswith(t)]
    return max(found, key=len) if found else None
