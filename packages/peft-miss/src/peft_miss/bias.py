"""The `bias` option ('none', 'all', '<method>_only'): which base-model biases train and are saved.

Hugging Face PEFT handles it generically for every method whose config has a `bias` field:
- 'all': every parameter named `bias` / `*.bias` in the model is trainable and saved;
- '<anything>_only': the biases of the adapted layers (saved as `<layer>.base_layer.bias`);
- only one adapter of a model may use a mode other than 'none'.
"""

from __future__ import annotations

import torch

from peft_core import BaseTunerLayer, ModulesToSaveWrapper


class BiasModesMixin:
    """Adds HF's `bias` modes to a `BaseTuner` subclass (it needs the tuner's `model` and `peft_config`)."""

    def _check_new_adapter_config(self, config) -> None:  # type: ignore[no-untyped-def]
        with_bias = [name for name, c in self.peft_config.items() if getattr(c, "bias", "none") != "none"]  # type: ignore[attr-defined]
        if getattr(config, "bias", "none") != "none" and not any(c is config for c in self.peft_config.values()):  # type: ignore[attr-defined]
            with_bias.append("<new>")
        if len(with_bias) > 1:
            raise ValueError(
                f"{type(self).__name__} supports only one adapter with bias != 'none' (they would share the same base "
                f"biases); adapters with bias: {with_bias}. Set bias='none' for all but one."
            )
        super()._check_new_adapter_config(config)  # type: ignore[misc]

    def _mark_extra_trainable(self, adapter_name: str) -> None:
        bias = getattr(self.peft_config[adapter_name], "bias", "none")  # type: ignore[attr-defined]
        if bias == "all":
            for name, param in self.model.named_parameters():  # type: ignore[attr-defined]
                if name == "bias" or name.endswith(".bias"):
                    param.requires_grad_(True)
        elif bias.endswith("_only"):
            for layer in self.tuner_layers():  # type: ignore[attr-defined]
                base_bias = getattr(layer.get_base_layer(), "bias", None)
                if base_bias is not None:
                    base_bias.requires_grad_(True)
        super()._mark_extra_trainable(adapter_name)  # type: ignore[misc]

    def extra_tensors_to_save(self, adapter_name: str) -> dict[str, torch.Tensor]:
        out = dict(super().extra_tensors_to_save(adapter_name))  # type: ignore[misc]
        bias = getattr(self.peft_config.get(adapter_name), "bias", "none")  # type: ignore[attr-defined]
        model = self.model  # type: ignore[attr-defined]
        if bias == "all":
            wrappers = [n for n, m in model.named_modules() if isinstance(m, ModulesToSaveWrapper)]
            for key, tensor in model.state_dict(keep_vars=True).items():
                if not (key == "bias" or key.endswith(".bias")):
                    continue
                if any(key.startswith(w + ".") for w in wrappers):
                    continue  # saved by the wrapper itself, under the original module's path
                out[key] = tensor
        elif bias.endswith("_only"):
            for name, module in model.named_modules():
                if not isinstance(module, BaseTunerLayer):
                    continue
                base_bias = getattr(module.base_layer, "bias", None)
                if isinstance(base_bias, torch.Tensor):
                    out[f"{name}.base_layer.bias" if name else "base_layer.bias"] = base_bias
        return out
