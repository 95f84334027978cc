"""`HiraModel`: puts the matching HiRA layer on each targeted module.

`nn.Linear` and transformers' `Conv1D` get `HiraLinear`, `nn.Embedding` `HiraEmbedding`,
`nn.Conv1d/2d/3d` (groups = 1) `HiraConv`. As in Hugging Face PEFT, a `fan_in_fan_out` that does
not fit the layer is corrected for that layer with a warning but left as given in the config.
"""

from __future__ import annotations

import warnings

from torch import nn

from peft_core import BaseTuner, ConfigError, pattern_value
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.errors import unsupported_target
from peft_core.tuners.linear_targets import is_transformers_conv1d, linear_features

from .config import HiraConfig
from .conv import HiraConv
from .embedding import HiraEmbedding
from .layer import HiraLayer, HiraLinear

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class HiraModel(BaseTuner):
    prefix = "hira_"
    config_cls = HiraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True

    def _create_and_replace(
        self, config: HiraConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = dict(dropout=config.hira_dropout, init_weights=config.init_weights)
        if isinstance(target, HiraLayer):
            target.update_layer(adapter_name, r=pattern_value(config.rank_pattern, current_key, config.r), **args)
            return
        if pattern_value(config.rank_pattern, current_key, config.r) != config.r:
            warnings.warn(
                f"HiraConfig.rank_pattern matches {current_key!r}, but Hugging Face PEFT 0.21.2 gives a layer's first "
                f"HiRA adapter the global r={config.r} (the pattern only applies to later adapters on it); this "
                f"package does the same so that files stay compatible.",
                UserWarning,
                stacklevel=4,
            )
        layer = self._new_layer(config, target, current_key)
        layer.update_layer(adapter_name, r=config.r, **args)
        setattr(parent, target_name, layer)

    def _new_layer(self, config: HiraConfig, target: nn.Module, key: str) -> HiraLayer:
        base = self.wrapped_base(target, key)
        if isinstance(base, nn.Embedding):
            return HiraEmbedding(target)
        if isinstance(base, _CONVS):
            if base.groups > 1:
                raise ConfigError(
                    f"HiRA does not support {type(base).__name__} {key!r} with groups={base.groups}: its update "
                    f"W ⊙ (B A) needs a full (out, in, *kernel) factor. Exclude the module."
                )
            return HiraConv(target)
        features = linear_features(base)
        if features is None:
            raise unsupported_target(
                key, base, "HiRA", "torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d/2d/3d and transformers' Conv1D"
            )
        conv1d = is_transformers_conv1d(base)
        if config.fan_in_fan_out != conv1d:
            warnings.warn(
                f"fan_in_fan_out is set to {config.fan_in_fan_out} but the target module is "
                f"`{'Conv1D' if conv1d else 'torch.nn.Linear'}`. Setting fan_in_fan_out to {conv1d}.",
                UserWarning,
                stacklevel=4,
            )
        return HiraLinear(target, *features, fan_in_fan_out=conv1d)
