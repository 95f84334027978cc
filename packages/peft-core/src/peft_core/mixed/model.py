"""`PeftMixedModel`: a base model with adapters of several methods (LoRA, LoHa, LoKr, OFT, ...).

Hugging Face PEFT's `PeftMixedModel` API (`get_peft_model(..., mixed=True)`, `add_adapter`,
`load_adapter`, `set_adapter([...])` to run several adapters at once), plus saving: each adapter is
written to its own folder (`default` at the root, the others in `<dir>/<name>/`) exactly as a
single-method `PeftModel` writes it, so every folder also loads in Hugging Face PEFT (load them in the
order they were added to get the same nesting, hence the same outputs).
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..config import PeftConfig
from ..errors import UnsupportedOperationError
from ..peft_model import PeftModel
from ..tuners.tuner import BaseTuner, validate_adapter_name
from .tuner import MixedModel, mixed_method


class PeftMixedModel(PeftModel):
    """Adapters of several mixed-compatible methods in one model; usually made by `get_peft_model(..., mixed=True)`.

    Adapters are applied in the order they were added, whatever order `set_adapter` lists them in.
    """

    def _tuner_class(self, peft_config: PeftConfig) -> type[BaseTuner]:
        mixed_method(peft_config)
        return MixedModel

    def _check_adapter_method(self, peft_config: PeftConfig) -> None:
        mixed_method(peft_config)

    def set_adapter(self, adapter_name: str | Sequence[str], inference_mode: bool = False) -> None:  # type: ignore[override]
        """Activate one adapter or several at once; their parameters train unless `inference_mode`."""
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        unknown = sorted(set(names) - set(self.peft_config))
        if unknown:
            raise ValueError(f"Adapter(s) {unknown} not found; existing adapters: {sorted(self.peft_config)}.")
        self.base_model.set_adapter(names)
        if inference_mode:
            for module in self.base_model.adapter_modules():
                module.set_adapter(names, inference_mode=True)

    def delete_adapter(self, adapter_name: str | Sequence[str]) -> None:  # type: ignore[override]
        """Delete one adapter or a list of them."""
        if not isinstance(adapter_name, str):
            for name in adapter_name:
                validate_adapter_name(name)
        self.base_model.delete_adapter(adapter_name)

    def add_weighted_adapter(self, *args: object, **kwargs: object) -> None:
        self.base_model.add_weighted_adapter(*args, **kwargs)

    def get_layer_status(self) -> None:
        raise UnsupportedOperationError("get_layer_status is not supported for PeftMixedModel (as in Hugging Face PEFT).")

    def get_model_status(self) -> None:
        raise UnsupportedOperationError("get_model_status is not supported for PeftMixedModel (as in Hugging Face PEFT).")
