"""`BOFTModel`: puts BOFT layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

import warnings

from torch import nn

from peft_core import BaseTuner

from .config import BOFTConfig
from .layer import BOFTLayer, Conv2d, Linear


def _is_transformers_conv1d(module: nn.Module) -> bool:
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


class BOFTModel(BaseTuner):
    """Butterfly orthogonal fine-tuning (Liu et al. 2024, https://huggingface.co/papers/2311.06243).

    The `bias` modes and default targets (Gemma 4's regex included) are peft-core's generic ones.
    """

    prefix = "boft_"

    def _create_and_replace(
        self,
        config: BOFTConfig,  # type: ignore[override]
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, BOFTLayer):
            target.update_layer(adapter_name, config)
            return
        base = self.wrapped_base(target, current_key)  # another method's layer: wrap it (mixed models only)
        if isinstance(base, nn.Conv2d) and base is not target:
            raise TypeError(
                f"Target module {current_key!r} already holds a {type(target).__name__}; BOFT on a Conv2d rotates the "
                f"base filter itself, so it can't wrap another method's layer. Add the BOFT adapter first, or exclude "
                f"this module."
            )
        if isinstance(base, nn.Linear):
            if config.fan_in_fan_out:
                warnings.warn(
                    "fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out "
                    "to False.",
                    UserWarning,
                    stacklevel=2,
                )
                config.fan_in_fan_out = False
            layer: BOFTLayer = Linear(target)
        elif isinstance(base, nn.Conv2d):
            layer = Conv2d(target)
        else:
            raise TypeError(self._unsupported(base, current_key))
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)

    @staticmethod
    def _unsupported(target: nn.Module, key: str) -> str:
        kind = type(target).__name__
        if _is_transformers_conv1d(target):
            hint = " Hugging Face PEFT's BOFT does not support GPT-2's Conv1D either."
        else:
            hint = ""
        return (
            f"Target module {key!r} ({kind}) is not supported by BOFT: only torch.nn.Linear and torch.nn.Conv2d are."
            f"{hint} Adjust target_modules."
        )
