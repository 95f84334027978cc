"""`OFTModel`: puts OFT layers on the targeted `nn.Linear` / `nn.Conv2d` / `nn.Embedding` modules of a model."""

from __future__ import annotations

import warnings

from torch import nn

from peft_core import BaseTuner

from .config import OFTConfig
from .layer import Conv2d, Embedding, Linear, OFTLayer


def _is_transformers_conv1d(module: nn.Module) -> bool:
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


class OFTModel(BaseTuner):
    """Orthogonal fine-tuning (Qiu et al. 2023, https://huggingface.co/papers/2306.07280; Liu et al. 2024).

    The `bias` modes and default targets (Gemma 4's regex included) are peft-core's generic ones.
    """

    prefix = "oft_"

    def _create_and_replace(
        self,
        config: OFTConfig,  # type: ignore[override]
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, OFTLayer):
            target.update_layer(adapter_name, config)
            return
        base = self.wrapped_base(target, current_key)  # another method's layer: wrap it (mixed models only)
        if isinstance(base, nn.Conv2d) and base is not target:
            raise TypeError(
                f"Target module {current_key!r} already holds a {type(target).__name__}; OFT on a Conv2d rotates the "
                f"base filter itself, so it can't wrap another method's layer. Add the OFT adapter first, or exclude "
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
            layer: OFTLayer = Linear(target)
        elif isinstance(base, nn.Conv2d):
            layer = Conv2d(target)
        elif isinstance(base, nn.Embedding):
            layer = Embedding(target)
        else:
            raise TypeError(self._unsupported(base, current_key))
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)

    @staticmethod
    def _unsupported(target: nn.Module, key: str) -> str:
        kind = type(target).__name__
        if _is_transformers_conv1d(target):
            hint = " Hugging Face PEFT's OFT does not support GPT-2's Conv1D either."
        else:
            hint = ""
        return (
            f"Target module {key!r} ({kind}) is not supported by OFT: only torch.nn.Linear, torch.nn.Conv2d and "
            f"torch.nn.Embedding are."
            f"{hint} Adjust target_modules."
        )
