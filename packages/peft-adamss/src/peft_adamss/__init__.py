"""peft-adamss: AdaMSS (adaptive multi-subspaces) for peft-core.

Importing the package registers the method `adamss` (peft_type `ADAMSS`); adapters saved by Hugging
Face PEFT with `peft_type: "ADAMSS"` load directly (their subspaces are recomputed from the base
weight, with scikit-learn's k-means, as HF does).
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import AdamssConfig
from .layer import AdamssLinear
from .model import AdamssModel

__all__ = ["TARGET_MODULES", "AdamssConfig", "AdamssLinear", "AdamssModel"]

# Hugging Face PEFT 0.21.2's table: LoRA's plus ViT's query / value.
TARGET_MODULES = {**QUERY_VALUE_TARGETS, "vit": ("query", "value")}

register_peft_method(
    name="adamss",
    config_cls=AdamssConfig,
    model_cls=AdamssModel,
    default_target_modules=TARGET_MODULES,
    plugin_api=">=1,<2",
)
