"""`AdaLoraModel`: AdaLoRA layers in a model, the rank allocation, and the orthogonality regulariser.

Built on peft-lora's `LoraModel` (as HF's AdaLoRA is on its LoRA): target defaults, `fan_in_fan_out`
flipping and the `bias` modes come from there. What AdaLoRA adds:
- SVD-form layers (`SVDLinear` for Linear / GPT-2 Conv1D, `SVDConv2d`) with `init_r` ranks;
- `update_and_allocate(global_step)`: importance scores and budgeted pruning (see `allocator.py`);
  the final masks are stored in the config's `rank_pattern`;
- in the forward pass, when the output has a `loss` tensor, `loss += orth_reg_weight · R` with
  `R` the mean over the trained adapter's `A` and `B` of `‖AAᵀ − I‖_F` / `‖BᵀB − I‖_F`;
- saving a pruned adapter cuts its tensors to the kept ranks; loading cuts the layers first;
- only one trainable adapter per model (others must have `inference_mode=True`), as in HF.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from peft_core import BaseTuner
from peft_lora import LoraModel

from .allocator import RankAllocator, adalora_layers, rank_key
from .config import AdaLoraConfig
from .layers import SUPPORTED_LAYERS, AdaLoraLayer, SVDLinear, layer_class_for
from .targets import DEFAULT_TARGET_MODULES

_SUFFIX = ".lora_E"


class AdaLoraModel(LoraModel):
    """Creates AdaLoRA adapters in a model; see `AdaLoraConfig` for the options.

    Training loop (as with HF PEFT)::

        loss = model(**batch).loss          # includes the orthogonality regulariser
        loss.backward()
        optimizer.step()
        model.base_model.update_and_allocate(step)
        optimizer.zero_grad()
    """

    # LoRA's prefix and mixed-model compatibility are inherited: AdaLoRA saves LoRA's lora_A / lora_B keys.
    config_cls = AdaLoraConfig
    shares_prefix_with = "lora"
    default_target_modules = DEFAULT_TARGET_MODULES
    hotswap_support = None  # LoRA's hotswapping does not cover AdaLoRA's SVD layers (nor does Hugging Face PEFT)
    trainable_adapter_name: str | None = None
    rankallocator: RankAllocator | None = None

    # -- adapters ---------------------------------------------------------------------------
    def _check_new_adapter_config(self, config: AdaLoraConfig) -> None:
        super()._check_new_adapter_config(config)
        trainable = [name for name, c in self.peft_config.items() if not c.inference_mode]
        if len(trainable) > 1:
            raise ValueError(
                f"{type(self).__name__} supports only 1 trainable adapter (trainable: {trainable}). When using "
                f"multiple adapters, set inference_mode to True for all adapters except the one you want to train "
                f"(or load them with is_trainable=False)."
            )

    def inject_adapter(
        self, model: nn.Module, adapter_name: str, low_cpu_mem_usage: bool = False, autocast_adapter_dtype: bool = True
    ) -> None:
        if hasattr(nn.ParameterDict(), adapter_name):
            raise ValueError(
                f"Invalid adapter name {adapter_name!r}: it collides with a torch ParameterDict attribute (AdaLoRA "
                f"keeps its tensors in ParameterDicts); choose another name."
            )
        # LoraModel.inject_adapter reports unused LoRA rank/alpha patterns; AdaLoRA's rank_pattern is not one.
        BaseTuner.inject_adapter(
            self, model, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
        )
        config = self.peft_config[adapter_name]
        if not config.inference_mode:
            self.trainable_adapter_name = adapter_name
            self.rankallocator = RankAllocator(self.model, config, adapter_name)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        if adapter_name == self.trainable_adapter_name:
            self.trainable_adapter_name = None
            self.rankallocator = None

    def _create_and_replace(
        self,
        config: AdaLoraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, AdaLoraLayer):
            target.update_layer(adapter_name, config.init_r, config.lora_alpha, config)
            return
        base = self.wrapped_base(target, current_key)  # another method's layer: wrap it (mixed models only)
        layer_cls = layer_class_for(base)
        if layer_cls is None:
            raise ValueError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by AdaLoRA. Currently, "
                f"only {SUPPORTED_LAYERS} are supported. Change target_modules (or exclude_modules) to skip it."
            )
        if layer_cls is SVDLinear:
            self._sync_fan_in_fan_out(config, base)
        layer = layer_cls(target)
        layer.update_layer(adapter_name, config.init_r, config.lora_alpha, config)
        setattr(parent, target_name, layer)

    # -- training ---------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        outputs = self.model.forward(*args, **kwargs)
        loss = getattr(outputs, "loss", None)
        if isinstance(loss, torch.Tensor) and self.trainable_adapter_name is not None:
            orth_reg_weight = self.peft_config[self.trainable_adapter_name].orth_reg_weight
            if orth_reg_weight < 0:
                raise ValueError("orth_reg_weight should be greater than or equal to 0.")
            outputs.loss += orth_reg_weight * self.orthogonal_regularization()
        return outputs

    def orthogonal_regularization(self, adapter_name: str | None = None) -> torch.Tensor | int:
        """Mean over the adapter's `lora_A` and `lora_B` of `‖AAᵀ − I‖_F` and `‖BᵀB − I‖_F` (0 if none)."""
        adapter_name = adapter_name or self.trainable_adapter_name
        regu_loss: torch.Tensor | int = 0
        num_param = 0
        for _, layer in adalora_layers(self.model, adapter_name):
            for attr in ("lora_A", "lora_B"):
                p = getattr(layer, attr)[adapter_name]
                para_cov = p @ p.T if attr == "lora_A" else p.T @ p
                eye = torch.eye(*para_cov.size(), out=torch.empty_like(para_cov))
                regu_loss += torch.norm(para_cov - eye, p="fro")
                num_param += 1
        return regu_loss / num_param if num_param > 0 else 0

    def update_and_allocate(self, global_step: int) -> None:
        """Update importance scores and prune to the step's budget; call once per training step.

        Call it after `loss.backward()` (and `optimizer.step()`) and before `optimizer.zero_grad()`.
        `tinit`, `tfinal` and `deltaT` are handled here. At step `total_step - tfinal` the final
        allocation is made and stored in the config's `rank_pattern`; later steps keep re-applying it.
        """
        name = self.trainable_adapter_name
        if name is None or self.rankallocator is None:
            raise ValueError(
                "update_and_allocate needs a trainable AdaLoRA adapter, but every adapter of this model is in "
                "inference mode (create it with inference_mode=False, or load it with is_trainable=True)."
            )
        config = self.peft_config[name]
        final_step = config.total_step - config.tfinal
        if global_step < final_step:
            _, rank_pattern = self.rankallocator.update_and_allocate(self.model, global_step)
            if rank_pattern:
                config.rank_pattern = rank_pattern
                self._sync_kept_ranks(name)
        elif global_step == final_step:
            _, rank_pattern = self.rankallocator.update_and_allocate(self.model, global_step, force_mask=True)
            config.rank_pattern = rank_pattern
            self.rankallocator.reset_ipt()
            self._sync_kept_ranks(name)
        else:
            if not config.rank_pattern:
                if self.rankallocator.init_bgt <= self.rankallocator.target_bgt:
                    return  # the budget never asked for pruning: nothing to re-apply
                raise ValueError(
                    f"update_and_allocate(step={global_step}) is past total_step - tfinal = {final_step}, but no "
                    f"rank_pattern was allocated: call it at every step, including step {final_step}."
                )
            self.rankallocator.mask_using_rank_pattern(self.model, self._masks(name))

    # -- pruned ranks, saving and loading ---------------------------------------------------
    def _masks(self, adapter_name: str) -> dict[str, torch.Tensor]:
        """module path -> bool mask, from the adapter's rank_pattern (keys with or without the adapter name)."""
        rank_pattern = self.peft_config[adapter_name].rank_pattern or {}
        masks = {}
        for key, mask in rank_pattern.items():
            if key.endswith(f"{_SUFFIX}.{adapter_name}"):
                path = key[: -len(f"{_SUFFIX}.{adapter_name}")]
            elif key.endswith(_SUFFIX):
                path = key[: -len(_SUFFIX)]
            else:
                raise ValueError(
                    f"AdaLoRA rank_pattern key {key!r} of adapter {adapter_name!r} does not end in '.lora_E'; keys are "
                    f"module paths + '.lora_E' (e.g. 'model.layers.0.self_attn.q_proj.lora_E')."
                )
            masks[path] = torch.as_tensor(mask, dtype=torch.bool).reshape(-1)
        return masks

    def _sync_kept_ranks(self, adapter_name: str) -> None:
        """Store the rank masks on the layers (they cut saved tensors) and the config's keys in HF's saved form."""
        config = self.peft_config[adapter_name]
        masks = self._masks(adapter_name)
        layers = dict(adalora_layers(self.model, adapter_name))
        unknown = sorted(set(masks) - set(layers))
        if unknown:
            raise ValueError(
                f"AdaLoRA rank_pattern of adapter {adapter_name!r} names modules without this adapter: "
                f"{[rank_key(p) for p in unknown][:5]}."
            )
        if config.rank_pattern is not None:
            config.rank_pattern = {rank_key(path): mask.tolist() for path, mask in masks.items()}
        for path, layer in layers.items():
            if path in masks:
                layer.kept_ranks[adapter_name] = masks[path]
            else:
                layer.kept_ranks.pop(adapter_name, None)

    def resize_modules_by_rank_pattern(self, adapter_name: str) -> None:
        """Cut the adapter's layers to the ranks kept by its rank_pattern (done before loading a pruned file)."""
        layers = dict(adalora_layers(self.model, adapter_name))
        for path, mask in self._masks(adapter_name).items():
            layer = layers.get(path)
            if layer is None:
                raise ValueError(
                    f"AdaLoRA rank_pattern entry {rank_key(path)!r} of adapter {adapter_name!r} names no module "
                    f"with this adapter; the adapter was saved for another model or target_modules."
                )
            if layer.lora_A[adapter_name].shape[0] != int(mask.sum()):
                layer.keep_ranks(adapter_name, mask)
        self._sync_kept_ranks(adapter_name)

    def adapter_state_dict(self, adapter_name: str) -> None:
        # Called by core before it collects the tensors to save: refresh the masks that cut them to the
        # kept ranks (rank_pattern may have been set or changed since), then use the structural default.
        if adapter_name in self.peft_config:
            self._sync_kept_ranks(adapter_name)
        return None

    def load_adapter_state_dict(self, adapter_name: str, state: Mapping[str, torch.Tensor], strict: bool) -> bool:
        # Called by core before it loads a file: a pruned adapter's tensors only fit the cut layers.
        if adapter_name in self.peft_config and self.peft_config[adapter_name].rank_pattern:
            self.resize_modules_by_rank_pattern(adapter_name)
        return False

    # -- LoRA features AdaLoRA does not have --------------------------------------------------
    def add_weighted_adapter(self, *args: Any, **kwargs: Any) -> None:
        """Not supported for AdaLoRA (as in HF PEFT); use LoRA instead."""
        raise TypeError(f"{type(self).__name__} does not support add_weighted_adapter method.")

    def set_scale(self, adapter: str, scale: float) -> None:
        raise TypeError(f"{type(self).__name__} does not support set_scale (AdaLoRA scales by lora_alpha / init_r).")
