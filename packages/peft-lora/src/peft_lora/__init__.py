"""peft-lora: LoRA (low-rank adaptation) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the "lora" method (peft_type "LORA"); peft-core also finds it
through the `peft.methods` entry point when it loads a LoRA adapter.

    from peft_core import get_peft_model
    from peft_lora import LoraConfig

    model = get_peft_model(base_model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
"""

from __future__ import annotations

from peft_core import register_peft_method

from .config import LoraConfig, LoraRuntimeConfig
from .conversion import ConversionReport, LoraConversionError, convert_to_lora, save_as_lora
from .inits.configs import CordaConfig, EvaConfig, LoftQConfig, LoraGAConfig
from .layers import Conv1d, Conv2d, Conv3d, Embedding, Linear, LoraLayer, MultiheadAttention
from .layers.param import ParamWrapper
from .model import LoraModel
from .quantized import dispatch_quantized_layer  # noqa: F401  (registers the quantized-layer dispatcher)
from .targets import DEFAULT_TARGET_MODULES
from .variants.configs import BdLoraConfig, KasaConfig, MontecloraConfig, VeloraConfig

__version__ = "0.1.0"

register_peft_method("lora", LoraModel, plugin_api=">=1,<2")

# data-driven initialisation entry points, imported on first use (see peft_lora.inits)
_LAZY_INITS = (
    "get_eva_state_dict",
    "initialize_lora_eva_weights",
    "preprocess_corda",
    "preprocess_loraga",
    "replace_lora_weights_loftq",
)


def __getattr__(name: str):
    if name in _LAZY_INITS:
        from . import inits

        return getattr(inits, name)
    raise AttributeError(f"module 'peft_lora' has no attribute {name!r}")


__all__ = [
    "BdLoraConfig",
    "CordaConfig",
    "ConversionReport",
    "EvaConfig",
    "KasaConfig",
    "LoftQConfig",
    "LoraGAConfig",
    *_LAZY_INITS,
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
    "LoraRuntimeConfig",
    "MontecloraConfig",
    "MultiheadAttention",
    "ParamWrapper",
    "VeloraConfig",
    "__version__",
    "convert_to_lora",
    "save_as_lora",
]
