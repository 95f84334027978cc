"""peft-cartridge: CARTRIDGE (a trained key/value cache prefix, stored directly) for peft-core.

Importing the package registers the method `cartridge` (peft_type `CARTRIDGE`); adapters saved by
Hugging Face PEFT with `peft_type: "CARTRIDGE"` load directly.
"""

from peft_core import register_peft_method

from .compose import compose_cartridge_adapters
from .config import CartridgeConfig
from .encoder import CartridgeEncoder
from .kv_init import (
    initialize_kv_prefix_from_past_key_values,
    initialize_kv_prefix_from_text,
    prompt_embeddings_from_past_key_values,
)
from .model import CartridgeModel

__all__ = [
    "CartridgeConfig",
    "CartridgeEncoder",
    "CartridgeModel",
    "compose_cartridge_adapters",
    "initialize_kv_prefix_from_past_key_values",
    "initialize_kv_prefix_from_text",
    "prompt_embeddings_from_past_key_values",
]

register_peft_method("cartridge", CartridgeModel, plugin_api=">=1,<2")
