"""peft-lora: LoRA (low-rank adaptation) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the "lora" method (peft_type "LORA"); peft-core also finds it
through the `peft.methods` entry point when it loads a LoRA adapter.

    from peft_core import get_peft_model
    from peft_lora import LoraConfig

    model = get_peft_model(base_model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
"""

from __future__ import annotations

from peft_core import register_peft_method

from .config import LoraConfig
from .conversion import ConversionReport, LoraConversionError, convert_to_lora, save_as_lora
from .layers import Conv1d, Conv2d, Conv3d, Embedding, Linear, LoraLayer
from .model import LoraModel
from .quantized import dispatch_quantized_layer  # noqa: F401  (registers the quantized-layer dispatcher)
from .targets import DEFAULT_TARGET_MODULES

__version__ = "0.1.0"

register_peft_method(
    name="lora",
    config_cls=LoraConfig,
    model_cls=LoraModel,
    is_mixed_compatible=True,
    default_target_modules=DEFAULT_TARGET_MODULES,
    plugin_api=">=1,<2",
)

__all__ = [
    "ConversionReport",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "DEFAULT_TARGET_MODULES",
    "Embedding",
    "Linear",
    "LoraConfig",
    "LoraConversionError",
    "LoraLayer",
    "LoraModel",
    "__version__",
    "convert_to_lora",
    "save_as_lora",
]
