"""peft-vblora: VB-LoRA (low-rank factors mixed from a shared vector bank) for peft-core.

Importing the package registers the method `vblora` (peft_type `VBLORA`); adapters saved by Hugging
Face PEFT with `peft_type: "VBLORA"` load directly, including `save_only_topk_weights` files.
"""

from peft_core import register_peft_method

from .config import VBLoRAConfig
from .layer import VBLoRALinear, low_rank_factors, mix_bank_vectors
from .model import VBLoRAModel

__all__ = ["VBLoRAConfig", "VBLoRALinear", "VBLoRAModel", "low_rank_factors", "mix_bank_vectors"]

register_peft_method("vblora", VBLoRAModel, plugin_api=">=1,<2")
