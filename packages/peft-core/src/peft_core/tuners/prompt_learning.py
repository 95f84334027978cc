"""Prompt learning: methods that add learned virtual tokens instead of changing layers.

A prompt-learning method owns, per adapter, a *prompt encoder* that produces a matrix of virtual
tokens. The base model is left untouched; the tuner changes the *inputs* of each call:

- virtual-token methods (`injects_cache = False`) prepend the rows to the input embeddings;
- prefix methods (`injects_cache = True`) turn the rows into per-layer key/value prefixes and pass
  them as the model's cache.

How the inputs change depends only on the adapter config's `task_type` (causal LM, seq2seq,
classification, ...) and on the method's kind, never on a method name. The saved file holds a
single bare key `prompt_embeddings` with the final virtual-token matrix (Hugging Face PEFT's
layout), so a method whose encoder reparameterises the tokens cannot be loaded as trainable.

A method package subclasses `PromptLearningConfig`, `PromptEncoderBase` (how the matrix is produced)
and `PromptLearningTuner` (`_create_prompt_encoder`, optionally `_prepare_prompt_learning_config`).
transformers is imported lazily, only where a transformers cache object must be built.

This module holds the tuner (rewriting inputs, generation, saving); the config is in `prompt_config`, the
encoders in `prompt_encoder`, and reading the base model and call arguments in `prompt_inputs`. All public
names are importable from here.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..config import TaskType
from ..errors import AdapterLoadError, UnsupportedOperationError
from .modules_to_save import ModulesToSaveWrapper
from .prompt_config import PromptLearningConfig
from .prompt_encoder import PromptEncoderBase, PromptEncoderDict
from .prompt_inputs import (
    _batch_size,
    _bind_arguments,
    _cache_argument,
    _cache_length,
    _config_dict,
    _first_value,
    _is_encoder_decoder,
    _model_config,
    _parameters,
    _prepend,
)
from .tuner import BaseTuner, validate_adapter_name

__all__ = ["PROMPT_EMBEDDINGS_KEY", "PromptEncoderBase", "PromptEncoderDict", "PromptLearningConfig", "PromptLearningTuner"]

PROMPT_EMBEDDINGS_KEY = "prompt_embeddings"
# Hugging Face PEFT keeps the base model directly under `base_model` for prompt learning, so the
# modules_to_save copies are saved as `base_model.<module path>.<param>` (no `.model.`).
_HF_PROMPT_BASE_PREFIX = "base_model."
_LABEL_PAD = -100


class PromptLearningTuner(BaseTuner):
    """Base of prompt-learning model classes: one prompt encoder per adapter, inputs rewritten per call.

    Subclasses set `prefix` and `injects_cache`, and `encoder_cls` or `_create_prompt_encoder`.
    """

    supports_merge: ClassVar[bool] = False
    # False: virtual tokens are prepended to the input embeddings. True: key/value prefixes per layer.
    injects_cache: ClassVar[bool] = False
    # The encoder class, built from the config alone (`encoder_cls(config)`) by the default `_create_prompt_encoder`.
    encoder_cls: ClassVar[type[PromptEncoderBase] | None] = None

    # -- hooks for method packages ----------------------------------------------------------
    def _create_prompt_encoder(
        self, config: PromptLearningConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> PromptEncoderBase:
        if self.encoder_cls is None:
            raise NotImplementedError(f"{type(self).__name__} must set encoder_cls or implement _create_prompt_encoder")
        return self.encoder_cls(config)  # type: ignore[call-arg]

    def _prepare_prompt_learning_config(self, config: PromptLearningConfig, model: nn.Module) -> PromptLearningConfig:
        """Fill the shape fields from the base model's config (Hugging Face PEFT's rules)."""
        model_config = _model_config(model)
        data = _config_dict(model_config)
        if config.num_virtual_tokens is None:
            raise ValueError(f"{type(config).__name__}.num_virtual_tokens must be set (e.g. 20).")
        if config.num_layers is None:
            value = _first_value(model_config, data, ("num_hidden_layers", "num_layers", "n_layer"))
            if value is None:
                raise ValueError(f"Can't read the number of layers of {type(model).__name__}; set num_layers in the config.")
            config.num_layers = value
        if config.token_dim is None:
            value = _first_value(model_config, data, ("hidden_size", "n_embd", "d_model"))
            if value is None:
                raise ValueError(f"Can't read the hidden size of {type(model).__name__}; set token_dim in the config.")
            config.token_dim = value
        if config.num_attention_heads is None:
            value = _first_value(
                model_config, data, ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads")
            )
            if value is None:
                raise ValueError(
                    f"Can't read the number of attention heads of {type(model).__name__}; set num_attention_heads."
                )
            config.num_attention_heads = value
        if config.num_transformer_submodules is None:
            config.num_transformer_submodules = 2 if config.task_type == TaskType.SEQ_2_SEQ_LM.value else 1
        if self.injects_cache and "num_key_value_heads" in data:
            # Grouped-query attention: the cache holds key/value heads, so prefixes are sized for them.
            if data.get("global_head_dim") is not None or data.get("per_layer_config") is not None:
                raise ValueError(
                    f"{type(model).__name__} has per-layer key/value shapes (global_head_dim / per_layer_config); "
                    f"{type(self).__name__} does not implement cache prefixes for such models."
                )
            head_dim = data.get("head_dim") or config.token_dim // config.num_attention_heads
            config.token_dim = head_dim * data["num_key_value_heads"]
            config.num_attention_heads = data["num_key_value_heads"]
        if getattr(config, "encoder_hidden_size", 0) is None:  # a reparameterising encoder's width, as in HF
            config.encoder_hidden_size = config.token_dim
        return config

    # -- injection --------------------------------------------------------------------------
    def inject_adapter(
        self,
        model: nn.Module,
        adapter_name: str,
        low_cpu_mem_usage: bool = False,
        autocast_adapter_dtype: bool = True,
    ) -> None:
        """Create the adapter's prompt encoder (no module of `model` is replaced) and freeze `model`."""
        validate_adapter_name(adapter_name)
        if "prompt_encoder" not in self._modules:
            self.prompt_encoder = PromptEncoderDict()
        config = self.peft_config[adapter_name]
        if not isinstance(config, PromptLearningConfig):
            raise TypeError(f"{type(self).__name__} needs a PromptLearningConfig, got {type(config).__name__}.")
        self._check_new_adapter_config(config)
        config = self._prepare_prompt_learning_config(config, model)
        self.peft_config[adapter_name] = config
        if self.injects_cache and any(getattr(m, "gradient_checkpointing", False) for m in model.modules()):
            raise UnsupportedOperationError(
                f"{type(self).__name__} passes its prefix to the model as a key/value cache, which gradient "
                f"checkpointing drops; disable gradient checkpointing (model.gradient_checkpointing_disable())."
            )
        word_embeddings = self._word_embeddings(model)
        encoder = self._create_prompt_encoder(config, adapter_name, word_embeddings)
        device = self._model_device(model)
        if device is not None:
            encoder.to(device)
        self.prompt_encoder[adapter_name] = encoder
        try:
            self._wrap_modules_to_save(config, adapter_name, list(model.named_modules()))
            self.prompt_encoder.cast_adapter_dtype(adapter_name, autocast_adapter_dtype)
            self._refresh_trainable()
        except BaseException:
            self.prompt_encoder.delete_adapter(adapter_name)
            raise

    @staticmethod
    def _word_embeddings(model: nn.Module) -> nn.Module | None:
        getter = getattr(model, "get_input_embeddings", None)
        if callable(getter):
            try:
                embeddings = getter()
            except (AttributeError, NotImplementedError):
                embeddings = None
            if embeddings is not None:
                return embeddings
        for module in model.modules():
            if isinstance(module, nn.Embedding):
                return module
        return None

    @staticmethod
    def _model_device(model: nn.Module) -> torch.device | None:
        param = next((p for p in model.parameters() if p.device.type != "meta"), None)
        return None if param is None else param.device

    def _model_dtype(self) -> torch.dtype | None:
        param = next((p for p in self.model.parameters() if p.is_floating_point()), None)
        return None if param is None else param.dtype

    def adapter_modules(self) -> Iterator[Any]:
        yield from super().adapter_modules()
        if "prompt_encoder" in self._modules:
            yield self.prompt_encoder

    def set_adapter(self, adapter_name: str | Sequence[str]) -> None:
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        if len(names) != 1:
            raise ValueError(
                f"{type(self).__name__}: only one prompt-learning adapter can be active at a time, got {names}."
            )
        super().set_adapter(names[0])

    # -- mixed batches / merging ------------------------------------------------------------
    def check_adapter_names(self, adapter_names: Sequence[str]) -> None:
        raise UnsupportedOperationError(
            f"{type(self).__name__} can't run a mixed-adapter batch (adapter_names=[...]): its adapters change the "
            f"sequence itself (virtual tokens or key/value prefixes). Run one call per adapter with set_adapter()."
        )

    def _check_merge_allowed(self) -> None:
        if not self.supports_merge:
            raise UnsupportedOperationError(
                f"{type(self).__name__} adapters are learned virtual tokens, not weight changes: there is nothing to "
                f"merge into the base weights. Keep the PeftModel, or use unload() to get the base model back."
            )

    # -- the prompt --------------------------------------------------------------------------
    @property
    def _prompt_enabled(self) -> bool:
        return (
            "prompt_encoder" in self._modules
            and not self.prompt_encoder.disable_adapters
            and any(name in self.prompt_encoder for name in self.active_adapters)
        )

    def _active_config(self) -> PromptLearningConfig:
        name = self.active_adapters[0]
        return self.peft_config[name]  # type: ignore[return-value]

    def prompt_matrix(self, adapter_name: str | None = None) -> torch.Tensor:
        """The final virtual-token matrix of an adapter (default: the active one)."""
        name = adapter_name if adapter_name is not None else self.active_adapters[0]
        return self.prompt_encoder[name].prompt_matrix()

    def get_prompt(self, batch_size: int, adapter_name: str | None = None) -> Any:
        """Virtual-token embeddings `[batch, tokens, dim]`, or for prefix methods the key/value cache."""
        name = adapter_name if adapter_name is not None else self.active_adapters[0]
        config = self.peft_config[name]
        matrix = self.prompt_matrix(name)
        if self.injects_cache:
            return self._prefix_cache(config, matrix, batch_size)
        return matrix.unsqueeze(0).expand(batch_size, -1, -1)

    def _prefix_layers(
        self, config: PromptLearningConfig, matrix: torch.Tensor, batch_size: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (key, value) prefixes `[batch, kv_heads, num_virtual_tokens, head_dim]`.

        Each row of the matrix is `num_layers * 2` blocks of `token_dim`: block `2l` is layer l's key
        prefix, block `2l + 1` its value prefix, each split into heads.
        """
        dtype = self._model_dtype()
        if dtype is not None:
            matrix = matrix.to(dtype)
        heads = config.num_attention_heads
        head_dim = config.token_dim // heads
        tokens = config.num_virtual_tokens
        stacked = matrix.reshape(1, tokens, config.num_layers * 2, heads, head_dim).repeat(batch_size, 1, 1, 1, 1)
        stacked = stacked.permute(2, 0, 3, 1, 4)  # [layers * 2, batch, heads, tokens, head_dim]
        if config.num_transformer_submodules == 2:
            # Hugging Face PEFT's encoder-decoder layout: the blocks are repeated once and taken four at a
            # time (self key, self value, cross key, cross value), so decoder layer l reads blocks 4l, 4l+1
            # of the repeated sequence. Reproduced as is: saved adapters depend on it.
            stacked = torch.cat((stacked, stacked), dim=0)
            return [(stacked[4 * layer], stacked[4 * layer + 1]) for layer in range(config.num_layers)]
        return [(stacked[2 * layer], stacked[2 * layer + 1]) for layer in range(config.num_layers)]

    def _prefix_cache(self, config: PromptLearningConfig, matrix: torch.Tensor, batch_size: int) -> Any:
        try:
            from transformers import DynamicCache, EncoderDecoderCache
        except ImportError as exc:  # pragma: no cover - prefix methods only make sense on transformers models
            raise ImportError("Prefix-style prompt learning needs transformers' cache classes; install transformers.") from exc
        layers = self._prefix_layers(config, matrix, batch_size)
        cache = DynamicCache(layers)
        if config.num_transformer_submodules == 2 or _is_encoder_decoder(self.model):
            # Prefixes go to the decoder's self-attention; the cross-attention cache starts empty.
            cache = EncoderDecoderCache(cache, DynamicCache())
        return cache

    # -- forward -------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self._prompt_enabled:
            return self.model(*args, **kwargs)
        inputs = _bind_arguments(self.model.forward, args, kwargs)
        config = self._active_config()
        task = self._task_of(config)
        if task == TaskType.SEQ_2_SEQ_LM.value:
            return self._forward_seq2seq(config, inputs)
        return self._forward_single_stack(config, task, inputs)

    def _task_of(self, config: PromptLearningConfig) -> str:
        if config.task_type is not None:
            return config.task_type
        if _is_encoder_decoder(self.model):
            return TaskType.SEQ_2_SEQ_LM.value
        return TaskType.FEATURE_EXTRACTION.value

    def _forward_single_stack(self, config: PromptLearningConfig, task: str, inputs: dict[str, Any]) -> Any:
        tokens = config.num_virtual_tokens
        input_ids = inputs.get("input_ids")
        inputs_embeds = inputs.get("inputs_embeds")
        batch = _batch_size(input_ids, inputs_embeds)
        inputs["attention_mask"] = _prepend(inputs.get("attention_mask"), tokens, 1)
        cache_name = _cache_argument(self.model.forward)
        given_cache = inputs.get(cache_name) if cache_name else None
        if _cache_length(given_cache) > 0:
            # Incremental decoding: the virtual tokens / prefixes are already in the cache.
            return self.model(**inputs)
        self._adjust_position_ids(config, inputs)
        keeps_token_types = task in (
            TaskType.SEQ_CLS.value,
            TaskType.TOKEN_CLS.value,
            TaskType.QUESTION_ANS.value,
        )
        if inputs.get("token_type_ids") is not None and not keeps_token_types:
            warnings.warn(
                "token_type_ids are not supported with prompt learning for this task; ignoring them.", stacklevel=3
            )
            inputs["token_type_ids"] = None
        if self.injects_cache:
            return self._call_with_cache(self.get_prompt(batch), inputs)
        if inputs.get("token_type_ids") is not None:
            inputs["token_type_ids"] = _prepend(inputs["token_type_ids"], tokens, 0)
        if task == TaskType.CAUSAL_LM.value and inputs.get("labels") is not None:
            inputs["labels"] = _prepend(inputs["labels"], tokens, _LABEL_PAD)
        inputs["inputs_embeds"] = self._prepend_prompts(input_ids, inputs_embeds, batch)
        inputs.pop("input_ids", None)
        return self.model(**inputs)

    def _prepend_prompts(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, batch: int, rows: int | None = None
    ) -> torch.Tensor:
        if inputs_embeds is None:
            embeddings = self._word_embeddings(self.model)
            if embeddings is None:
                raise ValueError(f"{type(self.model).__name__} has no input embeddings to put virtual tokens in front of.")
            inputs_embeds = embeddings(input_ids)
        prompts = self.get_prompt(batch)
        if rows is not None:
            prompts = prompts[:, :rows]
        return torch.cat((prompts.to(inputs_embeds.dtype), inputs_embeds), dim=1)

    def _adjust_position_ids(self, config: PromptLearningConfig, inputs: dict[str, Any]) -> None:
        position_ids = inputs.get("position_ids")
        if position_ids is None:
            return
        if self.injects_cache:
            inputs["position_ids"] = position_ids + config.num_virtual_tokens
        else:
            warnings.warn(
                "position_ids are not supported with virtual-token prompt learning; ignoring them (the model numbers "
                "the virtual tokens and the input together).",
                stacklevel=4,
            )
            inputs["position_ids"] = None

    def _call_with_cache(self, cache: Any, inputs: dict[str, Any]) -> Any:
        """Run the model with `cache` as its key/value cache. Task models whose forward does not take a
        cache (e.g. BERT classifiers) get it passed to their backbone through a forward pre-hook."""
        name = _cache_argument(self.model.forward)
        if name is not None:
            inputs[name] = cache
            return self.model(**inputs)
        backbone = self._cache_backbone()
        backbone_name = _cache_argument(backbone.forward)

        def inject(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            kwargs = dict(kwargs)
            kwargs[backbone_name] = cache
            return args, kwargs

        handle = backbone.register_forward_pre_hook(inject, with_kwargs=True)
        try:
            return self.model(**inputs)
        finally:
            handle.remove()

    def _cache_backbone(self) -> nn.Module:
        for _, module in self.model.named_children():
            if _cache_argument(getattr(module, "forward", None)) is not None and not isinstance(
                module, ModulesToSaveWrapper
            ):
                return module
        raise ValueError(
            f"{type(self.model).__name__} takes no key/value cache, which prefix-style prompt learning needs."
        )

    def _forward_seq2seq(self, config: PromptLearningConfig, inputs: dict[str, Any]) -> Any:
        tokens = config.num_virtual_tokens
        input_ids = inputs.get("input_ids")
        inputs_embeds = inputs.get("inputs_embeds")
        if input_ids is None and inputs_embeds is None and inputs.get("encoder_outputs") is not None:
            batch = inputs["encoder_outputs"][0].shape[0]
        else:
            batch = _batch_size(input_ids, inputs_embeds)
        self._adjust_position_ids(config, inputs)
        if self.injects_cache:
            cache_name = _cache_argument(self.model.forward) or "cache"
            inputs["decoder_attention_mask"] = _prepend(inputs.get("decoder_attention_mask"), tokens, 1)
            if _cache_length(inputs.get(cache_name)) > 0:
                return self.model(**inputs)
            inputs[cache_name] = self.get_prompt(batch)
            return self.model(**inputs)
        inputs["attention_mask"] = _prepend(inputs.get("attention_mask"), tokens, 1)
        if input_ids is None and inputs_embeds is None:
            return self.model(**inputs)  # only encoder_outputs: the encoder already saw the virtual tokens
        inputs["inputs_embeds"] = self._prepend_prompts(input_ids, inputs_embeds, batch, rows=tokens)
        inputs.pop("input_ids", None)
        return self.model(**inputs)

    # -- generate ------------------------------------------------------------------------------
    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """Generate with the active adapter: the virtual tokens (or prefixes) are put in front once, in the
        first step; later steps reuse them from the cache. Disabled adapters: the base model's generate."""
        if not self._prompt_enabled:
            return self.model.generate(*args, **kwargs)
        inputs = _bind_arguments(self.model.generate, args, kwargs)
        config = self._active_config()
        if self._task_of(config) == TaskType.SEQ_2_SEQ_LM.value:
            return self._generate_seq2seq(config, inputs)
        return self._generate_decoder_only(config, inputs)

    def _generate_decoder_only(self, config: PromptLearningConfig, inputs: dict[str, Any]) -> Any:
        input_ids = inputs.get("input_ids", inputs.pop("inputs", None))
        if input_ids is None:
            raise ValueError("generate() with prompt learning needs input_ids.")
        inputs["input_ids"] = input_ids
        if inputs.get("inputs_embeds") is not None:
            raise ValueError("generate() with prompt learning takes input_ids, not inputs_embeds.")
        tokens = config.num_virtual_tokens
        batch, length = input_ids.shape[:2]
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones(batch, length, dtype=torch.long, device=input_ids.device)
        inputs["attention_mask"] = _prepend(mask, tokens, 1)
        accepts_positions = "position_ids" in _parameters(self.model.forward)
        given_positions = inputs.pop("position_ids", None)
        if self.injects_cache:
            cache_name = _cache_argument(self.model.forward) or "cache"
            if _cache_length(inputs.get(cache_name)) > 0:
                raise ValueError("generate() with prefix tuning builds its own cache; don't pass one.")
            inputs[cache_name] = self.get_prompt(batch)
            if accepts_positions:
                # The same positions forward() uses: the prefix occupies positions 0..tokens-1.
                if given_positions is None:
                    given_positions = torch.arange(length, device=input_ids.device).unsqueeze(0).expand(batch, -1)
                inputs["position_ids"] = given_positions + tokens
            return self.model.generate(**inputs)
        if given_positions is not None:
            warnings.warn(
                "position_ids are not supported with virtual-token prompt learning; ignoring them.", stacklevel=3
            )
        with torch.no_grad():
            inputs["inputs_embeds"] = self._prepend_prompts(input_ids, None, batch)
        if accepts_positions:
            # forward() numbers virtual tokens and inputs 0..n-1 whatever the padding; generate does the same.
            total = tokens + length
            inputs["position_ids"] = torch.arange(total, device=input_ids.device).unsqueeze(0).expand(batch, -1)
        return self.model.generate(**inputs)

    def _generate_seq2seq(self, config: PromptLearningConfig, inputs: dict[str, Any]) -> Any:
        input_ids = inputs.get("input_ids", inputs.pop("inputs", None))
        if input_ids is None:
            raise ValueError("generate() with prompt learning needs input_ids.")
        tokens = config.num_virtual_tokens
        batch = input_ids.shape[0]
        if self.injects_cache:
            inputs["input_ids"] = input_ids
            cache_name = _cache_argument(self.model.forward) or "cache"
            if _cache_length(inputs.get(cache_name)) > 0:
                raise ValueError("generate() with prefix tuning builds its own cache; don't pass one.")
            inputs[cache_name] = self.get_prompt(batch)
            inputs["decoder_attention_mask"] = _prepend(inputs.get("decoder_attention_mask"), tokens, 1)
            return self.model.generate(**inputs)
        if inputs.pop("encoder_outputs", None) is not None:
            warnings.warn("encoder_outputs are ignored by generate() with prompt learning.", stacklevel=3)
        inputs.pop("input_ids", None)
        with torch.no_grad():
            inputs["inputs_embeds"] = self._prepend_prompts(input_ids, None, batch, rows=tokens)
        inputs["attention_mask"] = _prepend(inputs.get("attention_mask"), tokens, 1)
        return self.model.generate(**inputs)

    # -- saved state ---------------------------------------------------------------------------
    def adapter_state_dict(self, adapter_name: str) -> dict[str, torch.Tensor]:
        """`prompt_embeddings` (the final virtual-token matrix) plus any modules_to_save copies."""
        if adapter_name not in self.prompt_encoder:
            raise ValueError(f"Adapter {adapter_name!r} does not exist; existing adapters: {list(self.prompt_encoder)}.")
        with torch.no_grad():
            matrix = self.prompt_encoder[adapter_name].prompt_matrix().detach().clone()
        state = {PROMPT_EMBEDDINGS_KEY: matrix}
        for key, (_, tensor) in self._modules_to_save_keys(adapter_name).items():
            state[key] = tensor
        return state

    def _modules_to_save_keys(self, adapter_name: str) -> dict[str, tuple[str, torch.Tensor]]:
        """saved key (Hugging Face PEFT's `base_model.<path>.<param>`) -> (model key, live tensor)."""
        out: dict[str, tuple[str, torch.Tensor]] = {}
        for path, module in self.model.named_modules():
            if not isinstance(module, ModulesToSaveWrapper):
                continue
            for t in module.adapter_tensors(adapter_name):
                out[f"{_HF_PROMPT_BASE_PREFIX}{path}.{t.saved_key}"] = (f"{path}.{t.model_key}", t.tensor)
        return out

    def load_adapter_state_dict(self, adapter_name: str, state: Mapping[str, torch.Tensor], strict: bool) -> bool:
        if adapter_name not in self.prompt_encoder:
            raise AdapterLoadError(f"The model has no adapter named {adapter_name!r} to load weights into.")
        extras = self._modules_to_save_keys(adapter_name)
        unexpected: list[str] = []
        assignments: list[tuple[torch.Tensor, torch.Tensor]] = []
        for key, value in state.items():
            if key == PROMPT_EMBEDDINGS_KEY:
                continue
            target = extras.get(key)
            if target is None and key.startswith("base_model.model."):
                target = extras.get(_HF_PROMPT_BASE_PREFIX + key[len("base_model.model.") :])
            if target is None:
                unexpected.append(key)
                continue
            if tuple(target[1].shape) != tuple(value.shape):
                raise AdapterLoadError(f"{key}: file {tuple(value.shape)} vs model {tuple(target[1].shape)}.")
            assignments.append((target[1], value))
        missing = [] if PROMPT_EMBEDDINGS_KEY in state else [PROMPT_EMBEDDINGS_KEY]
        found = set(state) | {_HF_PROMPT_BASE_PREFIX + k[len("base_model.model.") :] for k in state if k.startswith("base_model.model.")}
        missing += [k for k in extras if k not in found]
        if PROMPT_EMBEDDINGS_KEY not in state:
            raise AdapterLoadError(
                f"Adapter {adapter_name!r}: the weights file has no {PROMPT_EMBEDDINGS_KEY!r} tensor; it is not a "
                f"prompt-learning adapter (keys: {sorted(state)[:5]})."
            )
        if missing or unexpected:
            msg = (
                f"Adapter {adapter_name!r}: the weights file does not fit the model: missing keys {missing}, "
                f"unexpected keys {unexpected[:5]}."
            )
            if strict:
                raise AdapterLoadError(msg + " Pass strict=False to load the matching keys anyway.")
            warnings.warn(msg, UserWarning, stacklevel=3)
        self.prompt_encoder[adapter_name].load_prompt_matrix(state[PROMPT_EMBEDDINGS_KEY])
        with torch.no_grad():
            for dest, value in assignments:
                dest.copy_(value.to(dest.device, dest.dtype))
        return True


__all__ = [
    "PROMPT_EMBEDDINGS_KEY",
    "PromptEncoderBase",
    "PromptEncoderDict",
    "PromptLearningConfig",
    "PromptLearningTuner",
]
