"""peft-miss: MiSS (shard sharing, formerly Bone) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `miss` (peft_type `"MISS"`). Legacy Bone adapters
(`peft_type: "BONE"`) can be converted with `convert_bone_adapter`.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .bone import convert_bone_adapter
from .config import MissConfig
from .layer import MissLinear
from .model import MissModel

register_peft_method(
    name="miss", config_cls=MissConfig, model_cls=MissModel, default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)

__all__ = ["MissConfig", "MissLinear", "MissModel", "convert_bone_adapter"]
