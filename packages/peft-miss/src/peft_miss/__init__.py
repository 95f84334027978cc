"""peft-miss: MiSS (shard sharing, formerly Bone) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `miss` (peft_type `"MISS"`). Legacy Bone adapters
(`peft_type: "BONE"`) can be converted with `convert_bone_adapter`.
"""

from peft_core import register_peft_method

from .bone import convert_bone_adapter
from .config import MissConfig
from .layer import MissLinear
from .model import MissModel

register_peft_method("miss", MissModel, plugin_api=">=1,<2")

__all__ = ["MissConfig", "MissLinear", "MissModel", "convert_bone_adapter"]
