"""`ShadowModel`: wraps decoder blocks in `ShadowLayer`s and owns each adapter's shadow network.

Per adapter the tuner holds a shadow backbone (`shadow_backbone[name]`), a projection to the base
width (`shadow_projection[name]`, identity when the widths agree) and, for sequence classification,
a copy of the classifier (`shadow_head[name]`). Hugging Face PEFT saves them as
`base_model.shadow_<part>.default.<...>` whatever the adapter's name; so do we.

Four hooks (see `hooks.py`) carry the shadow state through the base decoder loop: the base model's
pre-hook computes the initial state from the raw inputs, the first wrapped block's pre-hook pairs it
with the hidden states, the last wrapped block's hook unpairs them, and the base model's hook packs
both KV caches into one `ShadowCache` for incremental decoding.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, Sequence

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner, ConfigError, UnsupportedOperationError

from . import backbone as bb
from .config import MIRROR, ShadowConfig
from .hooks import ShadowHooks
from .layer import SAVED_ADAPTER_NAME, ShadowLayer
from .losses import last_token, sequence_classification_loss, shifted_cross_entropy

SHADOW_CONTAINERS = ("shadow_backbone", "shadow_projection", "shadow_head")
CLASSIFIER_NAMES = ("score", "classifier")


class ShadowModel(BaseTuner):
    prefix = "shadow_"
    config_cls = ShadowConfig
    supports_merge = False

    # -- setup ------------------------------------------------------------------------------
    def _ensure_containers(self) -> None:
        for name in SHADOW_CONTAINERS:
            if name not in self._modules:
                setattr(self, name, nn.ModuleDict())
        if "_shadow_hooks" not in self.__dict__:
            self.__dict__["_shadow_hooks"] = ShadowHooks(self)
            self.__dict__["_shares_embeddings"] = {}
            self.__dict__["last_shadow_loss"] = None

    def inject_adapter(self, model: nn.Module, adapter_name: str, **kwargs: Any) -> None:
        """BaseTuner's injection (same keyword arguments), then the shadow network placed and the hooks bound."""
        self._ensure_containers()
        try:
            super().inject_adapter(model, adapter_name, **kwargs)
            self._place_shadow(adapter_name, kwargs.get("autocast_adapter_dtype", True))
        except BaseException:
            self._drop_shadow(adapter_name)
            raise
        self._shadow_hooks.register()
        self._refresh_trainable(freeze_base=False)

    def _prepare_adapter_config(self, config: ShadowConfig, model: nn.Module) -> ShadowConfig:
        if config.target_modules is None:
            config.target_modules = bb.default_targets(model)
        return config

    def _check_new_adapter_config(self, config: ShadowConfig) -> None:
        super()._check_new_adapter_config(config)
        if len(self.peft_config) > 1 and any(c.task_type == "SEQ_CLS" for c in self.peft_config.values()):
            raise ConfigError(
                "ShadowPEFT supports a single adapter when one of them is for sequence classification (its classifier "
                "is both a modules_to_save copy and a shadow head). Use one PeftModel per classification adapter."
            )

    def _create_and_replace(
        self, config: ShadowConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if adapter_name not in self.shadow_backbone:  # built before the first block's tensors (HF's draw order)
            self._build_shadow(adapter_name, config)
        if isinstance(target, ShadowLayer):
            target.update_layer(adapter_name, config)
            return
        self.wrapped_base(target, current_key)  # refuses another method's layer outside a mixed model
        if isinstance(target, (nn.Linear, nn.Embedding)) or not list(target.children()):
            raise ConfigError(
                f"ShadowPEFT wraps whole decoder blocks, but target {current_key!r} is a {type(target).__name__}. Set "
                f"target_modules to the blocks (e.g. r'.*\\.layers\\.\\d+$'), or leave it None for every block."
            )
        layer = ShadowLayer(target, self._base_hidden_size())
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)

    def _base_hidden_size(self) -> int:
        config = getattr(self.model, "config", None)
        if config is None:
            raise ConfigError(f"ShadowPEFT needs a transformers model with a config; got {type(self.model).__name__}.")
        return bb.hidden_size_of(config)

    def _build_shadow(self, adapter_name: str, config: ShadowConfig) -> None:
        reference = next(self.model.parameters(), None)
        device = reference.device if reference is not None and not reference.is_meta else torch.device("cpu")
        # built for real even under low_cpu_mem_usage: its non-persistent buffers (rotary tables) are not in files
        with torch.device(device):
            if config.shadow_model == MIRROR:
                backbone, projection = bb.build_mirror(self.model, config), None
            else:
                backbone, projection = bb.load_pretrained(config)
            base_width = self._base_hidden_size()
            shadow_width = bb.hidden_size_of(backbone.config)
            if projection is not None:
                if (projection.in_features, projection.out_features) != (shadow_width, base_width):
                    raise ConfigError(
                        f"The shadow checkpoint {config.shadow_model!r} projects {projection.in_features} -> "
                        f"{projection.out_features}, but the shadow / base widths are {shadow_width} / {base_width}."
                    )
            elif shadow_width != base_width:
                projection = nn.Linear(shadow_width, base_width, bias=False)
            else:
                projection = nn.Identity()
            share = (
                config.share_embeddings
                and config.shadow_model == MIRROR
                and bb.accepts_inputs_embeds(backbone)
                and shadow_width == base_width
            )
            if share:
                bb.drop_input_embeddings(backbone)
            head = self._classifier_copy() if config.task_type == "SEQ_CLS" else None
        self.shadow_backbone[adapter_name] = backbone
        self.shadow_projection[adapter_name] = projection
        if head is not None:
            self.shadow_head[adapter_name] = head
        self._shares_embeddings[adapter_name] = share

    def _classifier_copy(self) -> nn.Module | None:
        for attr in CLASSIFIER_NAMES:
            candidate = getattr(self.model, attr, None)
            if isinstance(candidate, nn.Module):
                return deepcopy(candidate)
        return None

    def _place_shadow(self, adapter_name: str, autocast: bool) -> None:
        """The base's device and float dtype; fp32 instead of fp16/bf16 under autocast_adapter_dtype (as the
        adapter layers' tensors)."""
        reference = next((p for p in self.model.parameters() if p.is_floating_point() and not p.is_meta), None)
        if reference is None:
            return
        dtype = reference.dtype
        if autocast and dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32
        for name in SHADOW_CONTAINERS:
            container = self._modules[name]
            if adapter_name in container:
                container[adapter_name].to(device=reference.device, dtype=dtype)

    def _drop_shadow(self, adapter_name: str) -> None:
        for name in SHADOW_CONTAINERS:
            container = self._modules.get(name)
            if container is not None and adapter_name in container:
                del container[adapter_name]
        self.__dict__.get("_shares_embeddings", {}).pop(adapter_name, None)

    # -- adapters ---------------------------------------------------------------------------
    def _refresh_trainable(self, freeze_base: bool = True, adapter_modules: Sequence | None = None) -> None:
        super()._refresh_trainable(freeze_base=freeze_base, adapter_modules=adapter_modules)
        if "shadow_backbone" not in self._modules:
            return
        active = self.active_adapters
        inference = all(self.peft_config[n].inference_mode for n in active if n in self.peft_config)
        for name in SHADOW_CONTAINERS:
            for adapter_name, module in self._modules[name].items():
                module.requires_grad_(adapter_name in active and not inference)
        for adapter_name, backbone in self.shadow_backbone.items():
            config = self.peft_config.get(adapter_name)
            if config is not None and config.shadow_model != MIRROR:
                bb.freeze_embeddings(backbone)

    def set_adapter(self, adapter_name: str | Sequence[str]) -> None:
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        if len(names) != 1:
            raise UnsupportedOperationError(
                f"ShadowPEFT runs exactly one adapter at a time (one shadow state rides the decoder); got {names}."
            )
        super().set_adapter(names[0])

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._drop_shadow(adapter_name)
        self._shadow_hooks.register()  # the first / last wrapped block may have changed

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        for name in SHADOW_CONTAINERS:
            container = self._modules.get(name)
            if container is None or adapter_name not in container:
                continue
            for key, tensor in container[adapter_name].state_dict(keep_vars=True).items():
                out.append(AdapterTensor(f"{name}.{SAVED_ADAPTER_NAME}.{key}", f"{name}.{adapter_name}.{key}", tensor))
        return out

    # -- merging and unloading --------------------------------------------------------------
    def _check_merge_allowed(self) -> None:
        raise UnsupportedOperationError(
            "ShadowPEFT can't be merged into the base weights: its effect is an input-dependent shadow state, not a "
            "weight change. Use unload() for the plain base model, or unload_shadow() for the standalone shadow network."
        )

    def _unload_tuner_state(self) -> None:
        hooks = self.__dict__.get("_shadow_hooks")
        if hooks is not None:
            hooks.remove()
        for name in SHADOW_CONTAINERS:
            if name in self._modules:
                self._modules[name].clear()

    def unload_shadow(self, adapter_name: str | None = None, copy: bool = False) -> nn.Module:
        """The shadow network alone (`head(projection(backbone(x)))`), without the base model: a causal LM
        (with `generate`) or a sequence classifier. `copy=False` shares modules with this model; use
        `copy=True` to save it (a shared embedding table is then copied in)."""
        from .detached import DetachedShadowModel

        adapter_name = adapter_name or self.active_adapters[0]
        if adapter_name not in self.shadow_backbone:
            raise ValueError(f"No shadow network for adapter {adapter_name!r}; adapters: {list(self.shadow_backbone)}.")
        take = deepcopy if copy else (lambda module: module)
        backbone = take(self.shadow_backbone[adapter_name])
        projection = take(self.shadow_projection[adapter_name])
        head = self._shadow_head_of(adapter_name)
        head = take(head) if head is not None else None
        shared = None
        if self._shares_embeddings.get(adapter_name, False):
            embeddings = self.model.get_input_embeddings()
            if copy:
                backbone.embed_tokens = deepcopy(embeddings)
            else:
                shared = embeddings
        classify = self.peft_config[adapter_name].task_type == "SEQ_CLS"
        return DetachedShadowModel(backbone, projection, head, is_classification=classify, input_embeddings=shared)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        labels = kwargs.get("labels")
        output = self.model(*args, **kwargs)
        self.__dict__["last_shadow_loss"] = None
        if labels is None or getattr(output, "loss", None) is None or not self._shadow_hooks.path_active():
            return output
        loss = self.shadow_auxiliary_loss(labels, attention_mask=kwargs.get("attention_mask"))
        if loss is None:
            return output
        # a detached copy to log (distributed wrappers drop unknown output fields); the live one trains
        self.__dict__["last_shadow_loss"] = loss.detach()
        output.shadow_loss = loss.detach()
        weight = self.peft_config[self.active_adapters[0]].auxiliary_loss_weight
        if weight > 0:
            output.loss = output.loss + weight * loss
        return output

    def _shadow_head_of(self, adapter_name: str) -> nn.Module | None:
        if adapter_name in self.shadow_head:
            return self.shadow_head[adapter_name]
        if self.peft_config[adapter_name].task_type == "CAUSAL_LM":
            return self.model.get_output_embeddings()
        return None

    def shadow_auxiliary_loss(self, labels: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """The shadow path's own task loss on the initial shadow state (what `unload_shadow()` computes),
        unweighted; None when the last forward computed no shadow state or the task has no head."""
        adapter_name = self.active_adapters[0]
        state = self._shadow_hooks.seed_state
        head = self._shadow_head_of(adapter_name)
        if state is None or head is None:
            return None
        if adapter_name not in self.shadow_head:  # the base model's LM head
            return shifted_cross_entropy(head(state), labels)
        return sequence_classification_loss(head(last_token(state, attention_mask)), labels)
