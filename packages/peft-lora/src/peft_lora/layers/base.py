"""`LoraLayer`: what the Linear, Embedding and Conv LoRA layers share.

Per adapter `name` a layer holds the low-rank factors (`lora_A`/`lora_B` modules, or the
parameter-backed `lora_embedding_A`/`lora_embedding_B`), an optional DoRA magnitude
(`lora_magnitude_vector`) and plain per-adapter settings (`r`, `lora_alpha`, `scaling`, ...).
Subclasses implement `update_layer`, `get_delta_weight` and `_delta` (the scaled low-rank term
added to the base output); this class does the forward passes (single adapter, several active
adapters, mixed-adapter batches), merging and saving.

Numerics follow Hugging Face PEFT 0.21.2 operation for operation (`base(x) + B(A(x))·s`, in that
order), so adapters give bit-identical outputs in both libraries; the extra work is done in place
instead of on fresh tensors.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterator, Mapping, Sequence

import torch
from peft_core.tuners.linear_targets import is_transformers_conv1d
from peft_core import AdapterTensor, BaseTunerLayer, BatchPlan, current_batch_plan
from peft_core.tuners.construction import new_module, register_module
from torch import nn

from ..config import init_family
from ..variants import variant_for
from .dora import DoraMagnitude

MAGNITUDE = "lora_magnitude_vector"


class _NoEntries(Mapping[str, Any]):
    """What an optional adapter container reads as on a layer that never created it: empty, read-only."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:  # Mapping's would raise and catch a KeyError
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


_NO_ENTRIES = _NoEntries()


class _OptionalContainer:
    """Class attribute for an adapter container only some layers fill: `lora_embedding_A/B`
    (embedding layers) and `lora_magnitude_vector` (DoRA). A layer's registered container when it has
    one, else an empty read-only mapping. Not creating three empty containers on every Linear/Conv
    layer saves about a fifth of the time of creating a LoRA layer (an `nn.ParameterDict` costs
    ~13 µs to build and register); such layers then also have no empty `ParameterDict`/`ModuleDict`
    children under those names (Hugging Face PEFT's have them; files and state dicts are the same)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: nn.Module | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        found = obj._modules.get(self.name)
        return _NO_ENTRIES if found is None else found


class LoraLayer(BaseTunerLayer):
    adapter_layer_names = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", MAGNITUDE, "lora_velora_embed", "lora_diag", "lora_monteclora_sampler")
    lora_embedding_A = _OptionalContainer()
    lora_embedding_B = _OptionalContainer()
    lora_magnitude_vector = _OptionalContainer()
    lora_velora_embed = _OptionalContainer()
    lora_diag = _OptionalContainer()  # KaSA
    lora_monteclora_sampler = _OptionalContainer()  # MonteCLoRA
    other_param_names = (
        "r",
        "lora_alpha",
        "scaling",
        "lora_dropout",
        "use_dora",
        "use_rslora",
        "lora_bias",
        "lora_init",
        "_dora_norms",
        "lora_variant",
    )
    supports_mixed_batch = True
    # The method whose tuner adds adapters to this layer (subclasses of other methods, e.g. AdaLoRA, set theirs).
    owner_method = "lora"
    # Unsafe (in-place) merges: whether the delta is cast to the weight dtype first (HF: Embedding yes,
    # Linear/Conv no: the in-place add then rounds once, from the promoted dtype).
    _cast_delta_in_unsafe_merge = False

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        # Plain per-adapter settings go straight into __dict__ (what nn.Module.__setattr__ does for
        # non-module values, without its checks: one LoRA layer is made per targeted module).
        self.__dict__.update(
            r={},  # dict[str, int]
            lora_alpha={},  # dict[str, float]
            scaling={},  # dict[str, float]
            use_dora={},  # dict[str, bool]
            use_rslora={},  # dict[str, bool]
            lora_bias={},  # dict[str, bool]
            lora_init={},  # init family per adapter ("default", "pissa", "mica", ...)
            _dora_norms={},  # weight norms of merged DoRA adapters (for unmerge)
            lora_variant={},  # adapter -> LoraVariant for adapters that are not plain LoRA (see variants/)
        )
        register_module(self, "lora_dropout", new_module(nn.ModuleDict))
        register_module(self, "lora_A", new_module(nn.ModuleDict))
        register_module(self, "lora_B", new_module(nn.ModuleDict))
        # lora_embedding_A/B: created by Embedding; lora_magnitude_vector: by the first DoRA adapter
        self.__dict__["in_features"], self.__dict__["out_features"] = self._in_out_features(self.get_base_layer())

    # -- to implement -----------------------------------------------------------------------
    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        raise NotImplementedError

    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:  # noqa: D401
        raise NotImplementedError

    def _delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> torch.Tensor:
        """The term adapter `name` adds to `result`, the base output for input `x` (read by DoRA only):
        `_dora_delta` for a DoRA adapter, else `_lora_term` of the dropped-out input."""
        x = self._cast_input(x, self.lora_A[name].weight)
        if self.use_dora[name]:
            return self._dora_delta(name, x, result)
        dropout = self.lora_dropout[name]
        if not isinstance(dropout, nn.Identity):
            x = dropout(x)
        return self._lora_term(name, x)

    def _lora_term(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """`s·B(A(x))` of adapter `name` for an input already cast and dropped out."""
        raise NotImplementedError

    def _dora_delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support DoRA")

    def _dora_input(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """DoRA's input and base output: with dropout active (training) the input is dropped out and the base
        output must be recomputed from it (None); otherwise `x` and `result` as they are."""
        dropout = self.lora_dropout[name]
        if isinstance(dropout, nn.Identity) or not self.training:
            return x, result
        return dropout(x), None

    def _dora_merge_norm(self, name: str, base_weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support DoRA")

    def _dora_factor(self, name: str, norm: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support DoRA")

    # -- shared bookkeeping -----------------------------------------------------------------
    def _factor_container(self) -> nn.Module:
        return self.lora_A

    def has_lora(self, name: str) -> bool:
        return name in self._factor_container()

    def _register_settings(self, name: str, r: int, lora_alpha: float, config: Any) -> None:
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[name] = r
        self.lora_alpha[name] = lora_alpha
        self.use_rslora[name] = bool(config.use_rslora)
        self.scaling[name] = lora_alpha / math.sqrt(r) if config.use_rslora else lora_alpha / r
        self.use_dora[name] = bool(config.use_dora)
        self.lora_bias[name] = bool(config.lora_bias)
        self.lora_init[name] = init_family(config.init_lora_weights) or "default"
        p = config.lora_dropout
        register_module(self.lora_dropout, name, nn.Dropout(p=p) if p > 0.0 else new_module(nn.Identity))
        variant = variant_for(config, self)
        if variant is not None:
            self.lora_variant[name] = variant
        else:
            self.lora_variant.pop(name, None)

    def _finish_update(self, name: str) -> None:
        """Common tail of `update_layer`: device/dtype of the base layer, DoRA magnitude, trainable flags."""
        self._move_adapter_to_device_of_base_layer(name)
        if self.use_dora[name]:
            self._own_container(MAGNITUDE, nn.ModuleDict)[name] = DoraMagnitude(self._initial_magnitude(name))
        # The flags `set_adapter(self.active_adapters)` would give the new adapter (the others keep theirs):
        # trainable if this layer already runs an adapter of that name, frozen otherwise; MiCA's B frozen.
        trainable = name in self._active_adapter
        for param in self.adapter_parameters(name):
            if param.requires_grad != trainable:
                param.requires_grad_(trainable)
        if self.lora_init[name] == "mica":
            frozen = self.lora_B[name].weight if name in self.lora_B else self.lora_embedding_B[name]
            frozen.requires_grad_(False)

    def _own_container(self, attr: str, factory: type[nn.Module]) -> nn.Module:
        """The container `attr` of this layer, created and registered on first use."""
        found = self._modules.get(attr)
        if found is None:
            found = factory()
            setattr(self, attr, found)  # registers it (add_module would refuse: the class has the attribute)
        return found

    def _initial_magnitude(self, name: str) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support DoRA")

    def set_scale(self, adapter: str, scale: float) -> None:
        """Set the scaling of `adapter` to `scale` times its configured value."""
        if adapter not in self.scaling:
            return
        r, alpha = self.r[adapter], self.lora_alpha[adapter]
        self.scaling[adapter] = scale * alpha / (math.sqrt(r) if self.use_rslora[adapter] else r)

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        super().set_adapter(adapter_names, inference_mode=inference_mode)
        for name, family in self.lora_init.items():  # MiCA trains A only; its B stays frozen
            if family == "mica":
                frozen = self.lora_B[name].weight if name in self.lora_B else self.lora_embedding_B[name]
                frozen.requires_grad_(False)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        """Plain LoRA adds `get_delta_weight`; DoRA rescales the sum and `lora_bias` also changes the bias."""
        return self.has_lora(adapter_name) and not (self.use_dora.get(adapter_name) or self.lora_bias.get(adapter_name))

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """As saved by HF: the DoRA magnitude is `lora_magnitude_vector` in the file (no `.weight`)."""
        out = []
        for t in super().adapter_tensors(adapter_name):
            if t.saved_key == f"{MAGNITUDE}.weight":
                t = AdapterTensor(MAGNITUDE, t.model_key, t.tensor)
            out.append(t)
        return out

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:
            return self._mixed_batch_forward(x, result, plan)
        dtype = result.dtype
        factors = self._factor_container()
        for name in self._active_adapter:
            if name in factors:
                result = self._apply_adapter(name, x, result)
        return result if result.dtype == dtype else result.to(dtype)

    def _apply_adapter(self, name: str, x: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
        """`result + delta`, in place when that is safe (same values as the out-of-place sum)."""
        if self.lora_variant and name in self.lora_variant:
            return self.lora_variant[name].apply(self, name, x, result)
        if not self.use_dora[name]:
            if self._accumulate_delta(name, x, result):
                return result
            updated = self._train_update(name, x, result)
            if updated is not None:
                return updated
        delta = self._delta(name, x, result)
        if self.use_dora[name]:
            return result + delta  # DoRA's delta used `result`, which autograd may have saved
        return _add(result, delta)

    def _train_update(self, name: str, x: torch.Tensor, result: torch.Tensor) -> torch.Tensor | None:
        """Hook: `result + delta` for a training step as one autograd function that keeps less for
        backward (see layers/fused.py), or None (the default) to compose the modules."""
        return None

    def _accumulate_delta(self, name: str, x: torch.Tensor, out: torch.Tensor) -> bool:
        """Hook: add adapter `name`'s term for input `x` to `out` in place, in one fused product, and
        return True; False (the default) when it can't, and the caller adds `_delta(...)` instead.
        Only ever called for plain (non-DoRA) adapters; `out` may be a view of the layer's output."""
        return False

    def _mixed_batch_forward(self, x: torch.Tensor, result: torch.Tensor, plan: BatchPlan) -> torch.Tensor:
        """One base pass for the whole batch, then one low-rank update per adapter on its rows only."""
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: {type(self.get_base_layer()).__name__} layer got an input with "
                f"{x.shape[0]} rows but adapter_names has {plan.batch_size} entries. The model reshapes its batch "
                f"before this layer, so per-row adapters can't be applied; run one forward per adapter instead."
            )
        factors = self._factor_container()
        grouped = self._grouped_delta_(plan, x, result)
        for name in plan.adapter_groups():
            if name not in factors or name in grouped:
                continue
            rows = plan.rows(name, x.device)
            if self.lora_variant and name in self.lora_variant:
                result[rows] = self.lora_variant[name].apply(
                    self, name, plan.take(x, name), result[rows], rows=plan.groups[name]
                )
                continue
            if isinstance(rows, slice) and not self.use_dora[name]:
                if self._accumulate_delta(name, plan.take(x, name), result[rows]):
                    continue
            base_rows = None
            if self.use_dora[name]:  # only DoRA reads the base output of its rows
                base_rows = result[rows]
                if isinstance(rows, slice) and torch.is_grad_enabled():
                    base_rows = base_rows.clone()  # a view of `result`, which is updated in place below
            delta = self._delta(name, plan.take(x, name), base_rows)
            if delta.dtype != result.dtype:
                delta = delta.to(result.dtype)
            if isinstance(rows, slice):
                result[rows] += delta
            else:
                result.index_add_(0, rows, delta)
        return result

    def _grouped_delta_(self, plan: BatchPlan, x: torch.Tensor, result: torch.Tensor) -> set[str]:
        """Hook: add the updates of many adapters at once (batched products, see layers/grouped.py) and
        return their names; the default handles none."""
        return set()

    def _cast_input(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x if x.dtype == weight.dtype else x.to(weight.dtype)

    # -- merging ----------------------------------------------------------------------------
    def _check_mergeable(self, name: str) -> None:
        if self.lora_bias.get(name) and getattr(self.get_base_layer(), "bias", None) is None:
            raise RuntimeError("Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias.")

    def _merged_bias(self, name: str) -> torch.Tensor | None:
        if not self.lora_bias.get(name):
            return None
        base = self.get_base_layer()
        new_bias = base.bias + self.lora_B[name].bias * self.scaling[name]
        return new_bias.to(base.weight.dtype).detach()

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        variant = self.lora_variant.get(adapter_name)
        if variant is not None and variant.merge_refusal:
            raise ValueError(f"Can't merge adapter {adapter_name!r}: {variant.merge_refusal}.")
        self._check_mergeable(adapter_name)
        base = self.get_base_layer()
        weight = base.weight
        with torch.no_grad():
            if safe_merge or self.use_dora.get(adapter_name):
                # compute on a copy; check it before touching the base layer
                if self.use_dora.get(adapter_name):
                    norms_before = dict(self._dora_norms)
                    new_weight = self._dora_merged_weight(adapter_name, weight.data)
                else:
                    new_weight = weight.data.clone()
                    if not self._merge_delta_(adapter_name, new_weight):
                        new_weight += self.get_delta_weight(adapter_name).to(weight.dtype)
                try:  # checked first with safe_merge: nothing is written if it fails
                    self.write_merged(adapter_name, safe_merge, new_weight, self._merged_bias(adapter_name))
                except ValueError:
                    if self.use_dora.get(adapter_name):
                        self._dora_norms = norms_before
                    raise
                return
            # unsafe merge of plain LoRA: in place, like Hugging Face PEFT
            if not self._merge_delta_(adapter_name, weight.data):
                delta = self.get_delta_weight(adapter_name)
                weight.data += delta.to(weight.dtype) if self._cast_delta_in_unsafe_merge else delta
            if self.lora_bias.get(adapter_name):
                base.bias.data += self.lora_B[adapter_name].bias * self.scaling[adapter_name]

    def _merge_delta_(self, name: str, weight: torch.Tensor) -> bool:
        """Hook: `weight += get_delta_weight(name)` in place without materialising the delta (one
        fused product), with the bits of that sum; return False (the default) to have the caller add
        the delta itself. Only called for plain (non-DoRA) adapters, under no_grad."""
        return False

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        weight = base.weight
        with torch.no_grad():
            if self.use_dora.get(adapter_name):
                weight.data = self._unmerged_weight(adapter_name, weight.data)
                self._dora_norms.pop(adapter_name, None)
            else:
                weight.data -= self.get_delta_weight(adapter_name).to(weight.dtype)
            if self.lora_bias.get(adapter_name):
                base.bias.data -= self.lora_B[adapter_name].bias * self.scaling[adapter_name]

    def _unmerged_weight(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        """`weight` with merged adapter `name` taken out again (pure: returns a new tensor)."""
        delta = self.get_delta_weight(name)
        if not self.use_dora.get(name):
            return weight - delta.to(weight.dtype)
        factor = self._dora_factor(name, self._dora_norms[name])
        return (weight / factor - delta).to(weight.dtype)

    def _weight_without_merges(self, weight: torch.Tensor) -> torch.Tensor:
        """The base weight as the forward pass sees it: earlier merges undone (DoRA norms need it)."""
        for name in reversed(self.merged_adapters):
            weight = self._unmerged_weight(name, weight)
        return weight

    def _dora_merged_weight(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        delta = self.get_delta_weight(name)
        norm = self._dora_merge_norm(name, self._weight_without_merges(weight), delta).detach()
        self._dora_norms[name] = norm
        factor = self._dora_factor(name, norm)
        return (factor * (weight + delta)).to(weight.dtype)


def _add(result: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    if delta.dtype == result.dtype and delta.shape == result.shape:
        return result.add_(delta)
    return result + delta


def add_product_(out: torch.Tensor, a: torch.Tensor, bt: torch.Tensor) -> bool:
    """`out += a @ bt` in place with one `addmm_`, for `a` of shape (..., k), `bt` of shape (k, n) and
    `out` 2-D or contiguous (a strided `out`, e.g. the interleaved rows of a mixed-adapter batch,
    returns False untouched: `baddbmm_` would do, but its small-size kernel sums differently).

    Against `out += a @ bt` this skips materialising the product: one allocation and one pass over
    the (tokens, n) output fewer. The GEMM forms the same dot products whether or not it
    accumulates into `out`, so the result has the bits of the two-step sum (test_fast_paths checks
    this on the machine it runs on, and against Hugging Face PEFT)."""
    if a.shape[:-1] != out.shape[:-1] or out.dim() < 2:
        return False
    if out.dim() == 2:
        out.addmm_(a, bt)
        return True
    if out.is_contiguous():
        out.view(-1, out.shape[-1]).addmm_(a.reshape(-1, a.shape[-1]), bt)
        return True
    return False


def needs_autograd(*tensors: torch.Tensor) -> bool:
    """Whether an operation on `tensors` would be recorded by autograd (the fused in-place paths are
    for inference: their backward would not be Hugging Face PEFT's operation for operation)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def exact_scale(scaling: float) -> bool:
    """Whether multiplying by `scaling` is exact in binary floating point: a power of two >= 1 (2, 4,
    ...; `lora_alpha = 2 * r` gives 2). Scaling one factor of a product by it then scales every
    partial sum exactly, so `(s·B) @ A` has the same bits as `(B @ A) · s` (barring overflow to inf).
    False for a tensor scaling (see peft_lora.hotswap): its value is never branched on."""
    if isinstance(scaling, torch.Tensor):
        return False
    return scaling > 1 and math.frexp(scaling)[0] == 0.5


def is_plain_linear(module: nn.Module) -> bool:
    """An `nn.Linear` (not a subclass, quantised or parametrized layer) whose call would be exactly
    `F.linear(x, weight, bias)`: no forward/backward hooks on it and no global module hooks."""
    if type(module) is not nn.Linear:
        return False
    if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks:
        return False
    hooks = torch.nn.modules.module
    return not (
        hooks._global_forward_hooks
        or hooks._global_forward_pre_hooks
        or hooks._global_backward_hooks
        or hooks._global_backward_pre_hooks
    )


def scaled_product(b: torch.Tensor, a: torch.Tensor, scaling: float) -> torch.Tensor:
    """`(b @ a) * scaling` with Hugging Face PEFT's bits, in one pass over the (out, in) result instead
    of three (product, scaled copy, ...): the scale goes onto the small factor when that is exact,
    else it is applied in place."""
    if isinstance(scaling, torch.Tensor):
        return (b @ a) * scaling
    if scaling == 1:
        return b @ a
    if exact_scale(scaling):
        return (b * scaling) @ a
    return (b @ a).mul_(scaling)


def _scaled(t: torch.Tensor, scaling: float) -> torch.Tensor:
    """`t * scaling` in place (t is a fresh activation); multiplying by 1 is skipped (exact anyway)."""
    if isinstance(scaling, torch.Tensor):  # compiled hotswap: one graph whatever the value
        return t * scaling
    return t if scaling == 1 else t.mul_(scaling)


def warn_no_bias_for_lora_bias(base: nn.Module) -> None:
    if getattr(base, "bias", None) is None:
        warnings.warn(
            f"`lora_bias=True` was passed but the targeted layer of type {type(base).__name__} has no bias. "
            "This means that merging LoRA weights won't be possible.",
            UserWarning,
            stacklevel=3,
        )
