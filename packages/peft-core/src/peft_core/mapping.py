"""The façade: `get_peft_model`, `inject_adapter_in_model` and `get_peft_config`."""

from __future__ import annotations

from torch import nn

from .config import PeftConfig
from .peft_model import PeftModel, _warn_if_already_adapted, base_model_name_or_path
from .registry import method_for_config
from .task_models import wrapper_for_task


def get_peft_model(
    model: nn.Module,
    peft_config: PeftConfig,
    adapter_name: str = "default",
    mixed: bool = False,
    autocast_adapter_dtype: bool = True,
    revision: str | None = None,
    low_cpu_mem_usage: bool = False,
) -> PeftModel:
    """Wrap `model` with a new adapter described by `peft_config`; the wrapper follows `task_type`.

    `mixed=True` returns a `PeftMixedModel`, which also takes adapters of other (mixed-compatible) methods.
    """
    _warn_if_already_adapted(model)
    peft_config.base_model_name_or_path = base_model_name_or_path(model)
    if revision is not None:
        peft_config.revision = revision
    if mixed:
        from .mixed import PeftMixedModel

        wrapper: type[PeftModel] = PeftMixedModel
    else:
        wrapper = wrapper_for_task(peft_config.task_type)
    return wrapper(
        model,
        peft_config,
        adapter_name,
        autocast_adapter_dtype=autocast_adapter_dtype,
        low_cpu_mem_usage=low_cpu_mem_usage,
    )


def inject_adapter_in_model(
    peft_config: PeftConfig,
    model: nn.Module,
    adapter_name: str = "default",
    low_cpu_mem_usage: bool = False,
    autocast_adapter_dtype: bool = True,
) -> nn.Module:
    """Add adapter layers to `model` in place, without a `PeftModel` wrapper; returns `model`."""
    method = method_for_config(peft_config)
    if method.model_cls.uses_shared_state:
        raise ValueError(_SHARED_STATE.format(peft_type=peft_config.peft_type))
    tuner = method.model_cls(
        model,
        {adapter_name: peft_config},
        adapter_name,
        low_cpu_mem_usage=low_cpu_mem_usage,
        autocast_adapter_dtype=autocast_adapter_dtype,
    )
    if tuner.tuner_tensors(adapter_name) or tuner.adapter_state_dict(adapter_name) is not None:
        tuner.unload()
        raise ValueError(_SHARED_STATE.format(peft_type=peft_config.peft_type))
    return tuner.model


_SHARED_STATE = (
    "{peft_type} keeps shared state on the tuner itself (e.g. projections shared by all layers), which "
    "inject_adapter_in_model would drop; use get_peft_model instead."
)


def get_peft_config(config_dict: dict) -> PeftConfig:
    """Build the config class registered for `config_dict["peft_type"]` from a dict (e.g. a parsed
    adapter_config.json), with the same checks as loading a file."""
    return PeftConfig.from_peft_type(**config_dict)
