"""peft-cpt: context-aware prompt tuning (a few-shot context as trained virtual tokens, with its loss) for peft-core.

Importing the package registers the method `cpt` (peft_type `CPT`); adapters saved by Hugging Face PEFT
with `peft_type: "CPT"` load directly.
"""

from peft_core import register_peft_method

from .config import CPTConfig
from .encoder import CPTEmbedding, correction_radius, project_rows
from .loss import context_labels_and_types, cpt_loss
from .model import CPTModel

__all__ = ["CPTConfig", "CPTEmbedding", "CPTModel", "context_labels_and_types", "correction_radius", "cpt_loss", "project_rows"]

register_peft_method("cpt", CPTModel, plugin_api=">=1,<2")
