"""`AdamssModel`: puts an `AdamssLinear` around every targeted `nn.Linear`; runs ASA while training."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.errors import unsupported_target

from .asa import SubspaceScores, keep_top, scheduled_target
from .config import AdamssConfig
from .layer import AdamssLinear

# Hugging Face PEFT 0.21.2's table: LoRA's plus ViT's query / value.
TARGET_MODULES = {**QUERY_VALUE_TARGETS, "vit": ("query", "value")}

class AdamssModel(BaseTuner):
    prefix = "adamss_"
    config_cls = AdamssConfig
    default_target_modules = TARGET_MODULES

    def _create_and_replace(
        self, config: AdamssConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, AdamssLinear):
            target.update_layer(adapter_name, config)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise unsupported_target(current_key, base, "AdaMSS", "torch.nn.Linear only (as in Hugging Face PEFT)")
        layer = AdamssLinear(target)
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)

    # -- Adaptive Subspace Allocation ------------------------------------------------------------------
    def update_and_allocate(self, global_step: int) -> None:
        """Call after `loss.backward()` and before `optimizer.zero_grad()` on every training step
        (adapters with `use_asa=True`): accumulates the subspaces' importance during the warm-up and,
        every `mask_interval` steps, freezes all but the most important ones."""
        scores = self.__dict__.setdefault("_asa_scores", {})
        for name in self.active_adapters:
            config = self.peft_config.get(name)
            if config is None or not config.use_asa:
                continue
            layers = [m for m in self.tuner_layers() if isinstance(m, AdamssLinear) and name in m.adamss_A]
            if not layers or not config.init_warmup <= global_step <= config.final_warmup:
                continue
            per_layer = scores.setdefault(name, {})
            for layer in layers:
                entry = per_layer.setdefault(id(layer), SubspaceScores.empty(layer.num_subspaces(name)))
                entry.update(layer.adamss_A[name], layer.adamss_B[name], config.asa_importance_beta, config.asa_uncertainty_beta)
            if global_step % config.mask_interval:
                continue
            total = sum(layer.num_subspaces(name) for layer in layers)
            target = scheduled_target(global_step, total, config)
            if target is not None:
                scored = [
                    (layer, k, s)
                    for layer in layers
                    for k in range(layer.num_subspaces(name))
                    if (s := per_layer[id(layer)].score(k)) is not None
                ]
                for layer, k, active in keep_top(scored, target):
                    for params in (layer.adamss_A[name], layer.adamss_B[name]):
                        params[k].requires_grad_(active)
                        if not active:
                            params[k].grad = None
            for layer in layers:  # a fresh window for the next round
                per_layer[id(layer)] = SubspaceScores.empty(layer.num_subspaces(name))
