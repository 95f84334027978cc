"""peft-shadow: ShadowPEFT (a small trainable shadow network that runs beside a frozen decoder and
corrects each block's input) for peft-core.

Importing the package registers the method `shadow` (peft_type `SHADOW`); adapters saved by Hugging
Face PEFT with `peft_type: "SHADOW"` load directly. `ShadowCache` and `DetachedShadowModel` need
transformers and are imported from `peft_shadow.cache` / `peft_shadow.detached`.
"""

from peft_core import register_peft_method

from .config import ShadowConfig
from .layer import ShadowCarrier, ShadowLayer
from .model import ShadowModel

__all__ = ["ShadowCarrier", "ShadowConfig", "ShadowLayer", "ShadowModel"]

register_peft_method("shadow", ShadowModel, plugin_api=">=1,<2")
