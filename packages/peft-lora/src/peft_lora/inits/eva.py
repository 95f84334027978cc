"""EVA, Explained Variance Adaptation (arXiv 2410.07170): A from the principal components of each layer's
inputs on your data, ranks redistributed where the variance is.

    model = get_peft_model(base, LoraConfig(init_lora_weights="eva", eva_config=EvaConfig(), r=8, ...))
    initialize_lora_eva_weights(model, dataloader)      # batches of dicts: input_ids, attention_mask, labels

With the adapters disabled, every targeted linear layer's inputs (the non-padded, non-ignored tokens)
feed an incremental PCA until the top components stop moving (cosine similarity >= `tau`). The rank
budget (the sum of the configured ranks) then goes to the components that explain most variance across
all layers, each layer getting at most `rho·r`; A holds a layer's components, B stays zero (the model is
unchanged), a layer whose rank drops to 0 loses its adapter, and `rank_pattern` / `alpha_pattern` /
`target_modules` record the result (alpha scaled with the rank when `adjust_scaling_factors`), so the saved
adapter is a plain LoRA that Hugging Face PEFT loads. The same steps as Hugging Face PEFT 0.21.2's EVA
(seeded low-rank SVDs: deterministic). Layers fed the same input (q/k/v) share one PCA.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter, defaultdict
from contextlib import nullcontext
from itertools import cycle
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.distributed as dist
from peft_core import pattern_value
from peft_core.errors import ConfigError
from peft_core.tuners.matching import compact_target_names
from torch import nn

from .ipca import IncrementalPCA
from .targets import linear_targets

MIN_TARGETS_FOR_COMPACTION = 20


def forward_fn_dict(model: nn.Module, inputs: Mapping[str, Any]) -> Any:
    return model(**inputs)


def prepare_model_inputs_fn_language_modeling(model_input: Any, peft_config: Any) -> torch.Tensor:
    """Indices (batch, position) of the tokens used: attended, and not ignored by the labels."""
    if not isinstance(model_input, Mapping):
        raise TypeError("EVA's default input preparation needs batches that are dicts (input_ids, attention_mask).")
    mask = model_input.get("attention_mask", torch.ones_like(model_input["input_ids"])).bool()
    if peft_config.eva_config.use_label_mask and "labels" in model_input:
        mask = torch.logical_and(mask, model_input["labels"] != peft_config.eva_config.label_mask_value)
    return mask.nonzero()


def prepare_layer_inputs_fn_language_modeling(layer_input: Any, model_input: torch.Tensor, layer_name: str) -> torch.Tensor:
    """The layer's input rows at the used token positions."""
    if isinstance(layer_input, (tuple, list)):
        layer_input = layer_input[0]
    elif not isinstance(layer_input, torch.Tensor):
        raise TypeError(f"EVA: unsupported input {type(layer_input).__name__} of {layer_name!r}; pass prepare_layer_inputs_fn.")
    return layer_input[model_input.T.unbind()]


class _Hook:
    def __init__(self, name: str, prepare: Callable | None, gather: bool) -> None:
        self.name, self.gather = name, gather
        self.prepare_fn = prepare if prepare is not None else self._default_prepare
        self.model_input: Any = None

    @staticmethod
    def _default_prepare(layer_input: Any, model_input: Any, layer_name: str) -> torch.Tensor:
        if isinstance(layer_input, (tuple, list)):
            layer_input = layer_input[0]
        elif not isinstance(layer_input, torch.Tensor):
            raise TypeError(f"EVA: unsupported input {type(layer_input).__name__} of {layer_name!r}.")
        return layer_input.view(-1, layer_input.size(-1)) if layer_input.ndim > 2 else layer_input

    @torch.no_grad()
    def inputs(self, layer_input: Any) -> torch.Tensor:
        x = self.prepare_fn(layer_input, self.model_input, self.name)
        if not (dist.is_available() and dist.is_initialized() and self.gather):
            return x
        world = dist.get_world_size()
        local = torch.tensor([x.shape[0]], device=x.device)
        sizes = torch.empty(world, dtype=local.dtype, device=x.device)
        dist.all_gather_into_tensor(sizes, local)
        sizes_list = sizes.tolist()
        padded = x.new_zeros((max(sizes_list), *x.shape[1:]))
        padded[: x.shape[0]] = x
        gathered = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(gathered, padded.contiguous())
        return torch.cat([t[:n] for t, n in zip(gathered, sizes_list)], dim=0)


class _HashHook(_Hook):
    """Fingerprints a layer's input, to find layers fed the same input."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.hashes: list[int] = []

    @torch.no_grad()
    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.hashes.append(hash(tuple(self.inputs(inputs).cpu().view(-1).tolist())))


class _SVDHook(_Hook):
    """One incremental-PCA step per forward pass; tracks which components have converged."""

    def __init__(self, n_components: int, tau: float, *args: Any) -> None:
        super().__init__(*args)
        self.n_components = n_components
        self.tau = tau
        self.pca = IncrementalPCA(n_components=n_components, lowrank=True, seed=42)
        self.converged = torch.zeros((n_components,), dtype=torch.bool)

    @torch.no_grad()
    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        previous = self.pca.components_.clone().detach() if self.pca.fitted else None
        states = self.inputs(inputs)
        if states.size(0) < self.n_components:
            warnings.warn(
                f"EVA: skipping a step for {self.name!r}: the batch has fewer than {self.n_components} usable tokens.",
                UserWarning,
                stacklevel=2,
            )
            return
        self.pca.partial_fit(states.to(torch.float32))
        if previous is None:
            return
        components = self.pca.components_
        if components.dim() == 1:
            components, previous = components.reshape(1, -1), previous.reshape(1, -1)
        self.converged = torch.nn.functional.cosine_similarity(components, previous) >= self.tau


def _is_supported_lora_layer(module: nn.Module) -> bool:
    from ..layers.base import LoraLayer
    from ..layers.conv import _ConvNd
    from ..layers.embedding import Embedding
    from ..layers.mha import MultiheadAttention
    from ..layers.param import ParamWrapper

    return isinstance(module, LoraLayer) and not isinstance(module, (Embedding, MultiheadAttention, _ConvNd, ParamWrapper))


def _device(model: nn.Module) -> torch.device | None:
    devices = {p.device for p in model.parameters() if p.device.type != "meta"}
    return next(iter(devices)) if len(devices) == 1 else None


def _to(inputs: Any, device: torch.device | None) -> Any:
    if device is None:
        return inputs
    if hasattr(inputs, "to"):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return type(inputs)({k: _to(v, device) for k, v in inputs.items()})
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to(v, device) for v in inputs)
    return inputs


@torch.no_grad()
def get_eva_state_dict(
    model: nn.Module,
    dataloader: Iterable,
    peft_config: Any = None,
    forward_fn: Callable | None = forward_fn_dict,
    prepare_model_inputs_fn: Callable | None = prepare_model_inputs_fn_language_modeling,
    prepare_layer_inputs_fn: Callable | Mapping[str, Callable] | None = prepare_layer_inputs_fn_language_modeling,
    adapter_name: str = "default",
    gather_distributed_inputs: bool = True,
    show_progress_bar: bool = True,
) -> dict[str, torch.Tensor]:
    """{layer name: A's rows (its principal input components)} for `model` (a PeftModel, or a plain model with
    `peft_config`), sized by the redistributed ranks."""
    is_peft = hasattr(model, "peft_config") and hasattr(model, "disable_adapter")
    if peft_config is None:
        if not is_peft:
            raise ConfigError("get_eva_state_dict needs peft_config when the model is not a PeftModel.")
        peft_config = model.peft_config[adapter_name]
    if peft_config.eva_config is None:
        raise ConfigError("EVA needs LoraConfig(init_lora_weights='eva', eva_config=EvaConfig(...)).")
    if is_peft:
        targets = [n for n, m in model.named_modules() if _is_supported_lora_layer(m)]
        context = model.disable_adapter()
    else:
        targets = [n for n, _ in linear_targets(model, peft_config)]
        context = nullcontext()
    if not targets:
        raise ConfigError("EVA found no linear LoRA layer (or targeted nn.Linear) to initialise.")
    with context:
        return _eva_components(
            model, targets, dataloader, peft_config, forward_fn or forward_fn_dict, prepare_model_inputs_fn,
            prepare_layer_inputs_fn, gather_distributed_inputs, show_progress_bar,
        )


def _eva_components(
    model: nn.Module,
    targets: list[str],
    dataloader: Iterable,
    peft_config: Any,
    forward_fn: Callable,
    prepare_model_inputs_fn: Callable | None,
    prepare_layer_inputs_fn: Callable | Mapping[str, Callable] | None,
    gather: bool,
    show_progress_bar: bool,
) -> dict[str, torch.Tensor]:
    config = peft_config.eva_config
    if len(dataloader) == 0:  # type: ignore[arg-type]
        raise ConfigError("EVA: the dataloader is empty.")
    rho = config.rho
    if rho > 1000:
        rho = min(rho, max(max(p.shape) for p in model.parameters()) // peft_config.r)
    training = model.training
    device = _device(model)
    model.eval()

    def model_inputs(batch: Any) -> Any:
        return prepare_model_inputs_fn(batch, peft_config) if prepare_model_inputs_fn is not None else copy.deepcopy(batch)

    layer_fns = dict(prepare_layer_inputs_fn) if isinstance(prepare_layer_inputs_fn, Mapping) else None
    first = _to(next(iter(dataloader)), device)
    first_inputs = model_inputs(first)
    hashes: dict[str, tuple[_HashHook, Any]] = {}
    max_components: dict[str, int] = {}
    budget = 0
    for name in targets:
        fn = layer_fns.pop(name, None) if layer_fns is not None else prepare_layer_inputs_fn
        hook = _HashHook(name, fn, gather)
        hook.model_input = first_inputs
        hashes[name] = (hook, model.get_submodule(name).register_forward_hook(hook))
        rank = pattern_value(peft_config.rank_pattern, name, peft_config.r)
        max_components[name] = round(rank * rho)
        budget += rank
    if layer_fns:
        raise ConfigError(f"EVA: prepare_layer_inputs_fn names layers that are not targeted: {sorted(layer_fns)}.")
    try:
        forward_fn(model, first)
    finally:
        for _, handle in hashes.values():
            handle.remove()
    groups = defaultdict(list)
    for name, (hook, _) in hashes.items():
        groups[hook.hashes[0]].append(name)
    equal = [names for names in groups.values() if len(names) > 1]
    same_input = {other: names[0] for names in equal for other in names[1:]}  # layer -> the layer whose PCA it uses
    for names in equal:
        top = max(max_components[n] for n in names)
        for n in names:
            max_components[n] = top

    hooks: dict[str, tuple[_SVDHook, Any]] = {}
    for name in targets:
        if name in same_input:
            continue
        hook = _SVDHook(max_components[name], config.tau, name, hashes[name][0].prepare_fn, gather)
        hooks[name] = (hook, model.get_submodule(name).register_forward_hook(hook))
    layer_hook = {**{n: n for n in hooks}, **same_input}
    converged = {name: False for name in hooks}
    ranks = dict(max_components)
    batches: Iterable = cycle(dataloader)
    bar = None
    if show_progress_bar and not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0):
        from tqdm.auto import tqdm

        bar = tqdm(batches, position=0, leave=False)
        batches = bar
    try:
        for batch in batches:
            batch = _to(batch, device)
            inputs = model_inputs(batch)
            for name in list(hooks):
                hook, handle = hooks[name]
                done = bool(torch.all(hook.converged[: ranks[name]]))
                if not converged[name] and done and handle is not None:
                    handle.remove()
                    hooks[name] = (hook, None)
                    converged[name] = True
                    continue
                if converged[name] and not done:
                    handle = model.get_submodule(name).register_forward_hook(hook)
                    converged[name] = False
                hook.model_input = inputs
                hooks[name] = (hook, handle)
            if bar is not None:
                finished = sum(converged.values()) + sum(converged[v] for v in same_input.values())
                bar.set_description(f"{finished}/{len(layer_hook)} layers have converged")
            if all(converged.values()):
                break
            forward_fn(model, batch)
            if not all(h.pca.fitted for h, _ in hooks.values()):
                continue
            ranks = _distribute(hooks, layer_hook, same_input, budget, max_components)
    finally:
        for hook, handle in hooks.values():
            if handle is not None:
                handle.remove()
        if bar is not None:
            bar.close()
    state = {}
    for name, rank in ranks.items():
        hook = hooks[layer_hook[name]][0]
        if not torch.all(hook.converged[:rank]):
            raise RuntimeError(f"EVA: {name!r} was given rank {rank} but its components have not converged.")
        rows = hook.pca.components_[:rank]
        if config.whiten:
            rows = rows / hook.pca.singular_values_[:rank].sqrt().reshape(-1, 1)
        state[name] = rows
    model.train(training)
    return {k: v.to(device) for k, v in state.items()} if device is not None else state


def _distribute(
    hooks: Mapping[str, tuple[_SVDHook, Any]],
    layer_hook: Mapping[str, str],
    same_input: Mapping[str, str],
    budget: int,
    max_components: Mapping[str, int],
) -> dict[str, int]:
    """The rank budget to the components explaining most variance (each layer at most its max)."""
    ratios = {name: hook.pca.explained_variance_ratio_[: max_components[name]] for name, (hook, _) in hooks.items()}
    keys, values = zip(*[(layer, v) for layer, name in layer_hook.items() for v in ratios[name]])
    order = torch.stack(values).argsort(descending=True)
    counts = Counter(keys[i] for i in order[:budget])
    ranks = {layer: counts.get(layer, 0) for layer in layer_hook}
    for layer, source in same_input.items():
        if ranks[source] < ranks[layer]:
            ranks[source], ranks[layer] = ranks[layer], ranks[source]
    return ranks


@torch.no_grad()
def initialize_lora_eva_weights(
    model: nn.Module,
    dataloader: Iterable | None = None,
    eva_state_dict: dict[str, torch.Tensor] | None = None,
    forward_fn: Callable | None = forward_fn_dict,
    prepare_model_inputs_fn: Callable | None = prepare_model_inputs_fn_language_modeling,
    prepare_layer_inputs_fn: Callable | Mapping[str, Callable] | None = prepare_layer_inputs_fn_language_modeling,
    adapter_name: str = "default",
    gather_distributed_inputs: bool = True,
    show_progress_bar: bool = True,
) -> nn.Module:
    """Compute (or take `eva_state_dict`) EVA's components and put them into adapter `adapter_name`."""
    if not hasattr(model, "peft_config"):
        raise ConfigError("initialize_lora_eva_weights needs a PeftModel (get_peft_model with init_lora_weights='eva').")
    if len(model.active_adapters) > 1:
        raise ConfigError("initialize_lora_eva_weights works with a single active adapter.")
    if model.peft_config[adapter_name].init_lora_weights != "eva":
        raise ConfigError("initialize_lora_eva_weights needs an adapter created with init_lora_weights='eva'.")
    if eva_state_dict is None:
        if dataloader is None:
            raise ConfigError("initialize_lora_eva_weights needs a dataloader (or an eva_state_dict).")
        eva_state_dict = get_eva_state_dict(
            model, dataloader, None, forward_fn, prepare_model_inputs_fn, prepare_layer_inputs_fn, adapter_name,
            gather_distributed_inputs, show_progress_bar,
        )
    _load(model, dict(eva_state_dict), adapter_name)
    return model


def _load(model: nn.Module, state: dict[str, torch.Tensor], adapter_name: str) -> None:
    from ..layers.base import LoraLayer

    config = copy.copy(model.peft_config[adapter_name])
    prefix = "base_model.model."
    kept, fallback, others = [], [], []
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    for name, module in list(model.named_modules()):
        short = name.replace(prefix, "")
        if not isinstance(module, LoraLayer):
            others.append(short)
            continue
        r = pattern_value(config.rank_pattern, name, config.r)
        alpha = pattern_value(config.alpha_pattern, name, config.lora_alpha)
        if name in state:
            rows = state.pop(name)
            new_rank = rows.size(0)
            if new_rank == 0:  # no variance worth a rank here: the layer goes back to its base module
                parent_name, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent_name), child, module.get_base_layer())
                continue
            if new_rank != r and config.eva_config.adjust_scaling_factors:
                alpha *= new_rank / r
            if new_rank != r or module.lora_A[adapter_name].weight.device.type == "meta":
                config.init_lora_weights = "eva"
                module.update_layer(adapter_name, new_rank, alpha, config)
            module.lora_A[adapter_name].weight.copy_(rows)
            kept.append(short)
        else:
            config.init_lora_weights = True
            module.update_layer(adapter_name, r, alpha, config)
            fallback.append(short)
            new_rank = r
        if new_rank != config.r:
            rank_pattern[short] = new_rank
        if alpha != config.lora_alpha:
            alpha_pattern[short] = alpha
    targets = kept + fallback
    if len(targets) >= MIN_TARGETS_FOR_COMPACTION:
        targets = sorted(compact_target_names(set(targets), others + targets))
    target_config = model.peft_config[adapter_name]
    target_config.target_modules = targets
    target_config.rank_pattern = rank_pattern
    target_config.alpha_pattern = alpha_pattern
    if fallback:
        warnings.warn(
            f"EVA: these layers got init_lora_weights=True because the EVA state has nothing for them: {fallback} "
            f"(EVA initialises linear layers only).",
            UserWarning,
            stacklevel=3,
        )
