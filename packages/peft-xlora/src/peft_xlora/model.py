"""`XLoraModel`: LoRA experts plus, per X-LoRA adapter, a classifier that mixes them token by token.

Every call of the base model (a forward pass, or each step of `generate`) runs twice: a *scaling pass*
under `no_grad` with constant scalings (`scaling_pass_value`) that yields the last hidden states, the
classifier turns them into scalings, and the real pass mixes the experts with them. Neither pass uses a
key/value cache (the scalings of every token depend on the whole sequence), as in Hugging Face PEFT.

The saved file holds only the classifier (`base_model.internal_xlora_classifier.*`); the experts are
read from the paths in `adapters` whenever the adapter is created or loaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner, ConfigError, UnsupportedOperationError
from peft_core.tuners.tuner import validate_adapter_name
from peft_core.tuners.tuner_state import TunerModuleDict
from peft_lora.layers import LoraLayer

from .classifier import XLoraClassifier
from .config import XLoraConfig
from .experts import ExpertLoader, adopt_expert_layers, expert_name, read_expert_config
from .layer import CURRENT_CALL, XLoraCall

CLASSIFIER = "internal_xlora_classifier"


class XLoraModel(BaseTuner):
    prefix = "xlora_"
    config_cls = XLoraConfig
    supports_merge = False

    def __init__(self, model: nn.Module, peft_config: Any, adapter_name: str = "default", **kwargs: Any) -> None:
        object.__setattr__(self, "_loader", ExpertLoader())
        object.__setattr__(self, "_experts", {})  # X-LoRA adapter -> its experts' LoRA adapter names, in order
        object.__setattr__(self, "internal_xlora_scalings", None)  # the last scalings (HF's attribute)
        super().__init__(model, peft_config, adapter_name, **kwargs)

    # -- injection --------------------------------------------------------------------------------
    def inject_adapter(
        self, model: nn.Module, adapter_name: str, low_cpu_mem_usage: bool = False, autocast_adapter_dtype: bool = True
    ) -> None:
        validate_adapter_name(adapter_name)
        config: XLoraConfig = self.peft_config[adapter_name]
        self._check_config(config, model)
        if CLASSIFIER not in self._modules:  # BaseTuner trains, saves and deletes the classifiers with the adapters
            self.internal_xlora_classifier = TunerModuleDict()
        loaded: list[str] = []
        try:
            for key, path in config.adapters.items():
                name = expert_name(adapter_name, key)
                self._loader.load(model, name, read_expert_config(key, path), path, low_cpu_mem_usage)
                loaded.append(name)
            layers = adopt_expert_layers(model, loaded)
            for number, layer in enumerate(layers):
                layer.__dict__.setdefault("xlora_layer_number", {})[adapter_name] = number
            for layer in layers:
                for name in loaded:
                    if layer.has_adapter(name):
                        layer.cast_adapter_dtype(name, autocast_adapter_dtype)
            reference = next((p for layer in layers for n in loaded for p in layer.adapter_parameters(n)), None)
            dtype = next(model.parameters()).dtype  # Hugging Face PEFT's choice: the model's first parameter's
            device = torch.device("meta") if low_cpu_mem_usage else (reference.device if reference is not None else None)
            self.internal_xlora_classifier[adapter_name] = XLoraClassifier(config, len(loaded), len(layers), device, dtype)
            self.internal_xlora_classifier.cast_adapter_dtype(adapter_name, autocast_adapter_dtype)
            self._experts[adapter_name] = tuple(loaded)
            self._refresh_trainable()
        except BaseException:
            self._drop_experts(adapter_name, loaded)
            raise

    @staticmethod
    def _check_config(config: XLoraConfig, model: nn.Module) -> None:
        if not isinstance(config, XLoraConfig):
            raise TypeError(f"XLoraModel needs an XLoraConfig, got {type(config).__name__}.")
        if not config.adapters:
            raise ConfigError("XLoraConfig.adapters is empty: X-LoRA mixes LoRA experts; give at least one {name: path}.")
        model_hidden = getattr(getattr(model, "config", None), "hidden_size", None)
        if isinstance(model_hidden, int) and model_hidden != config.hidden_size:
            raise ConfigError(
                f"XLoraConfig.hidden_size={config.hidden_size} but the model's hidden size is {model_hidden}; the "
                f"classifier reads the model's hidden states: set hidden_size={model_hidden}."
            )

    def _drop_experts(self, adapter_name: str, experts: Sequence[str]) -> None:
        for layer in self.tuner_layers():
            for name in experts:
                if layer.has_adapter(name):
                    layer.delete_adapter(name)
            layer.__dict__.get("xlora_layer_number", {}).pop(adapter_name, None)
        self._loader.forget(experts)
        self._experts.pop(adapter_name, None)
        if CLASSIFIER in self._modules:
            self.internal_xlora_classifier.delete_adapter(adapter_name)

    # -- adapter state ------------------------------------------------------------------------------
    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        return super().tuner_tensors(adapter_name) + self._trained_expert_tensors(adapter_name)  # + the classifier

    def _trained_expert_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """With `use_trainable_adapters` the experts change in training, so they are saved too (Hugging Face
        PEFT saves only the classifier and ignores these keys): `<layer>.lora_A.<expert key>.weight`, LoRA's
        keys with the expert's key from `adapters` where LoRA has the adapter name."""
        config = self.peft_config.get(adapter_name)
        if config is None or not config.use_trainable_adapters:
            return []
        keys = dict(zip(self._experts.get(adapter_name, ()), config.adapters))
        out = []
        for path, module in self.model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            for expert, key in keys.items():
                for t in module.adapter_tensors(expert):
                    container, _, rest = t.saved_key.partition(".")
                    saved = f"{container}.{key}" + (f".{rest}" if rest else "")
                    out.append(AdapterTensor(f"model.{path}.{saved}", f"model.{path}.{t.model_key}", t.tensor))
        return out

    def remap_state_dict_for_load(self, adapter_name: str, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        """Files without trained experts (Hugging Face PEFT's) keep the experts read from their paths."""
        expected = self._trained_expert_tensors(adapter_name)
        prefix = "base_model." if any(k.startswith("base_model.") for k in state) else ""
        missing = {prefix + t.saved_key: t.tensor.detach() for t in expected if prefix + t.saved_key not in state}
        return {**dict(state), **missing} if missing else state

    def _refresh_trainable(self, freeze_base: bool = True, adapter_modules: Sequence[Any] | None = None) -> None:
        """The classifier of the active adapter trains; its experts too with `use_trainable_adapters`."""
        super()._refresh_trainable(freeze_base=freeze_base, adapter_modules=adapter_modules)
        for name in self.active_adapters:
            config = self.peft_config.get(name)
            if config is None or config.inference_mode or not config.use_trainable_adapters:
                continue
            experts = self._experts.get(name, ())
            for layer in self.tuner_layers():
                for expert in experts:
                    for param in layer.adapter_parameters(expert):
                        param.requires_grad_(True)

    def delete_adapter(self, adapter_name: str) -> None:
        experts = self._experts.get(adapter_name, ())
        super().delete_adapter(adapter_name)
        self._drop_experts(adapter_name, experts)

    def _unload_tuner_state(self) -> None:
        self._experts.clear()  # (BaseTuner empties the classifiers)

    def check_adapter_names(self, adapter_names: Sequence[str]) -> None:
        raise UnsupportedOperationError(
            "X-LoRA can't run a mixed-adapter batch (adapter_names=[...]): every call runs the whole batch through a "
            "scaling pass and its classifier. Run one call per adapter with set_adapter()."
        )

    def _check_merge_allowed(self) -> None:
        raise UnsupportedOperationError(
            "X-LoRA adapters can't be merged: the experts' weights change token by token with the classifier's "
            "scalings. Keep the PeftModel, or use unload() to get the base model back."
        )

    # -- the two passes ------------------------------------------------------------------------------
    def _active_xlora(self) -> str | None:
        names = [n for n in self.active_adapters if n in self._experts]
        if not names or (CLASSIFIER in self._modules and self.internal_xlora_classifier.disable_adapters):
            return None
        if len(names) > 1:
            raise UnsupportedOperationError(f"Only one X-LoRA adapter can be active at a time, got {names}.")
        return names[0]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self._mixing():
            return self.model(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if self._active_xlora() is not None:
            kwargs["use_cache"] = False  # every step recomputes the scalings of the whole sequence
        with self._mixing():
            return self.model.generate(*args, **kwargs)

    @contextlib.contextmanager
    def _mixing(self) -> Iterator[None]:
        """While active, each call of the base model is preceded by its scaling pass (a forward pre-hook,
        so that `generate`'s own calls go through it too)."""
        name = self._active_xlora()
        if name is None:
            yield
            return
        entry = CURRENT_CALL.get()
        tokens: list[contextvars.Token] = []
        accepts = _forward_parameters(self.model)

        def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            kwargs = dict(kwargs)
            for cache_name in ("past_key_values", "cache"):
                cache = kwargs.pop(cache_name, None)
                if cache is not None and _cache_length(cache) > 0:
                    raise UnsupportedOperationError(
                        "X-LoRA recomputes every token's scalings from the whole sequence: it can't continue from a "
                        "key/value cache. Pass the full sequence (generate() does this for you)."
                    )
            if "use_cache" in accepts:
                kwargs["use_cache"] = False
            scalings = self._scalings(name, module, args, kwargs)
            tokens.append(CURRENT_CALL.set(XLoraCall(name, self._experts[name], scalings, self.peft_config[name])))
            return args, kwargs

        def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if tokens:
                CURRENT_CALL.reset(tokens.pop())

        handles = (
            self.model.register_forward_pre_hook(before, with_kwargs=True),
            self.model.register_forward_hook(after, with_kwargs=True),
        )
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            CURRENT_CALL.set(entry)

    def _scalings(self, name: str, module: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
        classifier: XLoraClassifier = self.internal_xlora_classifier[name]
        first = args[0] if args else kwargs.get("input_ids")
        if first is None:
            first = kwargs.get("inputs_embeds")
        if first is None:
            raise ValueError("X-LoRA needs input_ids or inputs_embeds to size its scalings.")
        dummy = classifier.dummy_scalings(first.shape[0], first.shape[1], first.device)
        token = CURRENT_CALL.set(XLoraCall(name, self._experts[name], dummy, self.peft_config[name]))
        try:
            with torch.no_grad():
                scaling_pass = module.forward(*args, **{**kwargs, "output_hidden_states": True, "return_dict": True})
        finally:
            CURRENT_CALL.reset(token)
        scalings = classifier(scaling_pass.hidden_states[-1])
        self.internal_xlora_scalings = scalings
        return scalings

    # -- Hugging Face PEFT's X-LoRA API ----------------------------------------------------------------
    def _classifier(self) -> XLoraClassifier:
        name = next((n for n in self.active_adapters if n in self._experts), None)
        if name is None:
            raise ValueError("No X-LoRA adapter is active.")
        return self.internal_xlora_classifier[name]

    def set_topk_lora(self, value: int | None) -> None:
        """Mix only the `value` experts with the largest weights per token (None: all); saved with the config."""
        if value is not None and value < 1:
            raise ConfigError(f"top_k_lora must be at least 1 (or None), got {value!r}.")
        self._classifier().config.top_k_lora = value

    def set_global_scaling_weight(self, weight: float) -> None:
        self._classifier().config.global_scaling_weight = weight

    def get_global_scaling_weight(self) -> float:
        return self._classifier().config.global_scaling_weight

    def set_scaling_pass_value(self, value: float | None) -> None:
        """The experts' weight during the scaling pass; None is `1 / number of experts`."""
        classifier = self._classifier()
        classifier.config.scaling_pass_value = 1 / classifier.n_experts if value is None else value

    def get_latest_scalings(self) -> torch.Tensor | None:
        """The last scalings `[batch, tokens, n_layers, n_experts]`, or None."""
        return self.internal_xlora_scalings

    def get_scalings_log(self) -> list[torch.Tensor]:
        return list(self._classifier().log_scalings)

    def enable_scalings_logging(self) -> None:
        self._classifier().scalings_logging = True

    def disable_scalings_logging(self) -> None:
        self._classifier().scalings_logging = False

    def clear_scalings_log(self) -> None:
        self._classifier().log_scalings.clear()

    def get_bucketed_scalings_log(self) -> dict[int, tuple[list[int], list[torch.Tensor]]]:
        return self._classifier().bucketed_log()


def _forward_parameters(model: nn.Module) -> set[str]:
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def _cache_length(cache: Any) -> int:
    length = getattr(cache, "get_seq_length", None)
    if callable(length):
        return int(length())
    return 1 if cache else 0
