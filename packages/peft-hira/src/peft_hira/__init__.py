"""peft-hira: HiRA (Hadamard high-rank adaptation) for peft-core.

Importing the package registers the method `hira` (peft_type `HIRA`, prefix `hira_`, which sits
inside SHiRA's `shira_`: keys are selected structurally, never by prefix); adapters saved by
Hugging Face PEFT with `peft_type: "HIRA"` load directly.
"""

from peft_core import register_peft_method

from .config import HiraConfig
from .conv import HiraConv
from .embedding import HiraEmbedding
from .layer import HiraLayer, HiraLinear
from .model import HiraModel

__all__ = ["HiraConfig", "HiraConv", "HiraEmbedding", "HiraLayer", "HiraLinear", "HiraModel"]

register_peft_method("hira", HiraModel, plugin_api=">=1,<2")
