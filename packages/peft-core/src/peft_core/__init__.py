"""peft-core: the registry, tuner machinery, save/load and façade shared by every method package.

`import peft_core` imports torch but not transformers; method packages (`peft_lora`, ...) register
themselves on import and are found through the `peft.methods` entry-point group when an adapter
of their type is loaded.
"""

from typing import TYPE_CHECKING

from ._plugin_api import PLUGIN_API_VERSION
from .config import PeftConfig, TaskType
from .errors import (
    AdapterLoadError,
    AdapterNameError,
    AdapterNotFoundError,
    AdapterStateError,
    ConfigError,
    IncompatibleMethodError,
    InconsistentAdapterError,
    PeftError,
    RegistrationError,
    UnknownPeftTypeError,
    UnsupportedLayerError,
    UnsupportedOperationError,
)
from .mapping import get_peft_model, inject_adapter_in_model
from .adapter_files import load_peft_weights
from .peft_model import PeftModel
from .registry import PeftMethod, PeftType, get_peft_method, register_peft_method, registered_methods
from .state_dict import get_peft_model_state_dict, set_peft_model_state_dict
from . import task_models
from .task_models import *  # noqa: F403  (the PeftModelFor* task wrappers: task_models.__all__)
from .tuners.dispatch import (
    DispatchRequest,
    dispatch_layer,
    layer_dispatchers,
    register_layer_dispatcher,
    unregister_layer_dispatcher,
)
from .tuners.layer import AdapterTensor, BaseTunerLayer
from .tuners.matching import pattern_value
from .tuners.mixed_batch import BASE_ADAPTER_NAME, BatchPlan, current_batch_plan
from .tuners.modules_to_save import ModulesToSaveWrapper
from .tuners.tuner import BaseTuner

if TYPE_CHECKING:
    from .discovery import InstalledMethod, installed_methods, load_all_methods
    from .kbit import prepare_model_for_kbit_training
    from .mixed import PeftMixedModel
    from .tuners.prompt_learning import (
        PROMPT_EMBEDDINGS_KEY,
        PromptEncoderBase,
        PromptEncoderDict,
        PromptLearningConfig,
        PromptLearningTuner,
    )

# Imported on first use (PEP 562): prompt learning (which needs `inspect`) and entry-point discovery
# (`importlib.metadata`) are not needed by `import peft_core` or by layer-injecting methods.
_LAZY = {
    "AutoPeftModel": ".auto",
    "AutoPeftModelForCausalLM": ".auto",
    "AutoPeftModelForFeatureExtraction": ".auto",
    "AutoPeftModelForQuestionAnswering": ".auto",
    "AutoPeftModelForSeq2SeqLM": ".auto",
    "AutoPeftModelForSequenceClassification": ".auto",
    "AutoPeftModelForTokenClassification": ".auto",
    "LoadReport": ".state_dict",
    "PeftTypeName": ".peft_types",
    "TunerLayerStatus": ".status",
    "TunerModelStatus": ".status",
    "cast_mixed_precision_params": ".helpers",
    "get_base_model_state_dict": ".base_state_dict",
    "get_layer_status": ".status",
    "get_model_status": ".status",
    "get_peft_config": ".mapping",
    "rescale_adapter_scale": ".helpers",
    "set_base_model_state_dict": ".base_state_dict",
    "set_requires_grad": ".functional",
    "InstalledMethod": ".discovery",
    "installed_methods": ".discovery",
    "load_all_methods": ".discovery",
    "prepare_model_for_kbit_training": ".kbit",
    "PeftMixedModel": ".mixed",
    "PROMPT_EMBEDDINGS_KEY": ".tuners.prompt_learning",
    "PromptEncoderBase": ".tuners.prompt_learning",
    "PromptEncoderDict": ".tuners.prompt_learning",
    "PromptLearningConfig": ".tuners.prompt_learning",
    "PromptLearningTuner": ".tuners.prompt_learning",
}

# The public names: those imported above, the task wrappers (listed once, in task_models) and the lazy ones.
__all__ = [
    "PLUGIN_API_VERSION",
    "AdapterLoadError",
    "AdapterNameError",
    "AdapterNotFoundError",
    "AdapterStateError",
    "AdapterTensor",
    "BASE_ADAPTER_NAME",
    "BaseTuner",
    "BaseTunerLayer",
    "BatchPlan",
    "ConfigError",
    "DispatchRequest",
    "IncompatibleMethodError",
    "InconsistentAdapterError",
    "ModulesToSaveWrapper",
    "PeftConfig",
    "PeftError",
    "PeftMethod",
    "PeftModel",
    "PeftType",
    "RegistrationError",
    "TaskType",
    "UnknownPeftTypeError",
    "UnsupportedLayerError",
    "UnsupportedOperationError",
    "current_batch_plan",
    "dispatch_layer",
    "get_peft_method",
    "get_peft_model",
    "get_peft_model_state_dict",
    "inject_adapter_in_model",
    "layer_dispatchers",
    "load_peft_weights",
    "pattern_value",
    "register_layer_dispatcher",
    "register_peft_method",
    "registered_methods",
    "set_peft_model_state_dict",
    "unregister_layer_dispatcher",
    *task_models.__all__,
    *_LAZY,
]


def __getattr__(name: str):
    if name == "__version__":
        from .core_version import core_version as _core_version

        return _core_version()
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'peft_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
