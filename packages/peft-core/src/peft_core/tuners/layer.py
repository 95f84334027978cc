"""`BaseTunerLayer`: what every adapter layer shares (adapter bookkeeping, merge, saved tensors).

A method's layer subclasses it, keeps its per-adapter parameters in containers keyed by adapter
name (`nn.ModuleDict` / `nn.ParameterDict`) listed in `adapter_layer_names`, and implements
`update_layer` and `forward`. Merging is additive by default (`get_delta_weight`); methods whose
merge is not additive override `merge_adapter_weights` / `unmerge_adapter_weights`. Layers that
transform the base layer (a rotated or reflected weight) rather than add to its output may implement
`adapted_forward` instead of `forward`: the inherited `forward` handles disabling, merged weights and
mixed-adapter batches for them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Container, Iterable, Iterator, Literal, Mapping, Sequence

import torch
from torch import nn

from .construction import init_module, register_module
from .layer_containers import create_declared_containers, set_base_features
from .mixed_batch import BatchPlan, add_adapter_deltas, current_batch_plan, run_per_group


@dataclass(frozen=True)
class AdapterTensor:
    """One saved tensor of one adapter: its key in the file and in the model, relative to the layer."""

    saved_key: str
    model_key: str
    tensor: torch.Tensor


class BaseTunerLayer(nn.Module):
    """Base of all adapter layers. The wrapped module lives at `self.base_layer`."""

    # Containers keyed by adapter name holding the trainable (and saved) tensors.
    adapter_layer_names: tuple[str, ...] = ()
    # Plain dicts keyed by adapter name holding per-adapter settings (rank, scaling, dropout ...).
    other_param_names: tuple[str, ...] = ()
    # Whether `forward` honours mixed-adapter batches (see tuners.mixed_batch).
    supports_mixed_batch: bool = False
    # Whether this layer, nested inside another adapter layer, saves its tensors under its own path
    # (`<module>.base_layer.<key>`: one layer per adapted parameter of a module) instead of the outer
    # layer's path (a mixed-method model, where each method's file looks like a single-method one).
    saves_nested_path: bool = False
    # Set it (`{}` when every container has its default type) and `__init__` creates an empty container for
    # each name above: `nn.ParameterDict` for `adapter_layer_names`, `dict` for `other_param_names`, unless
    # named here with another factory (`nn.ModuleDict`, `layer_containers.saved_buffers`, ...). None: the
    # layer creates its own containers.
    container_types: Mapping[str, Callable[[], Any]] | None = None
    # True: `__init__` sets `in_features` / `out_features` from the base layer: an `nn.Linear` or transformers'
    # `Conv1D` (its sizes) or an `nn.ConvNd` (its channels); another base is refused with a TypeError.
    features_from_base: bool = False

    def __init__(self, base_layer: nn.Module) -> None:
        if _plain_module_init(type(self)):
            init_module(self)  # nn.Module.__init__, without its per-call overhead (one layer per target)
        else:
            super().__init__()
        register_module(self, "base_layer", base_layer)
        # plain values straight into __dict__ (nn.Module.__setattr__ costs ~3 µs each; a layer is made per target)
        self.__dict__.update(_active_adapter=[], _disable_adapters=False, merged_adapters=[])
        if self.features_from_base:
            set_base_features(self, self.get_base_layer())
        if self.container_types is not None:
            create_declared_containers(self, self.container_types)

    # -- the wrapped layer ------------------------------------------------------------------
    def get_base_layer(self) -> nn.Module:
        layer = self._modules["base_layer"]  # not self.base_layer: nn.Module.__getattr__ is slow
        while isinstance(layer, BaseTunerLayer):
            layer = layer._modules["base_layer"]
        return layer

    @property
    def weight(self) -> torch.Tensor:
        return self.get_base_layer().weight

    @property
    def bias(self) -> torch.Tensor | None:
        return getattr(self.get_base_layer(), "bias", None)

    # -- adapters ---------------------------------------------------------------------------
    @property
    def active_adapters(self) -> list[str]:
        return list(self._active_adapter)

    @property
    def active_adapter(self) -> str | list[str]:
        return self._active_adapter[0] if len(self._active_adapter) == 1 else list(self._active_adapter)

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    @property
    def merged(self) -> bool:
        return bool(self.merged_adapters)

    def _container(self, attr: str) -> Any:
        """`getattr(self, attr)` for a name in `adapter_layer_names` / `other_param_names`, without
        nn.Module.__getattr__'s slow path for submodules (these lookups run per layer, per adapter)."""
        found = self._modules.get(attr)
        return found if found is not None else getattr(self, attr)

    def adapter_names(self) -> list[str]:
        names: list[str] = []
        for attr in self.adapter_layer_names + self.other_param_names:
            found = self._modules.get(attr)
            container = found if found is not None else getattr(self, attr, None)
            for name in container.keys() if container is not None else ():
                if name not in names:
                    names.append(name)
        return names

    def has_adapter(self, adapter_name: str) -> bool:
        return any(adapter_name in self._container(attr) for attr in self.adapter_layer_names)

    def _held_entries(self, adapter_name: str) -> Iterator[tuple[str, Any, Any]]:
        """`(attr, container, entry)` for each container in `adapter_layer_names` that holds `adapter_name`."""
        for attr in self.adapter_layer_names:
            container = self._container(attr)
            if adapter_name in container:
                yield attr, container, container[adapter_name]

    def adapter_parameters(self, adapter_name: str) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for _, _, entry in self._held_entries(adapter_name):
            params.extend(_entry_parameters(entry))
        return params

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        """Activate `adapter_names`; only their parameters stay trainable (none in inference mode)."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for attr in self.adapter_layer_names:
            container = self._container(attr)
            if not container:
                continue
            for name, entry in container.items():
                trainable = name in names and not inference_mode
                for param in _entry_parameters(entry):
                    if param.requires_grad != trainable:
                        param.requires_grad_(trainable)
        # Every name is kept, also those this layer lacks (as in Hugging Face PEFT): code that asks one layer for
        # the model's active adapters (transformers' `active_adapters()`) must see them. Forwards skip absent ones.
        self.__dict__["_active_adapter"] = names

    def enable_adapters(self, enabled: bool) -> None:
        self._disable_adapters = not enabled

    def delete_adapter(self, adapter_name: str) -> None:
        for attr in self.adapter_layer_names + self.other_param_names:
            container = self._container(attr)
            if adapter_name in container:
                del container[adapter_name]
        if adapter_name in self.merged_adapters:
            self.merged_adapters.remove(adapter_name)
        if adapter_name in self._active_adapter:
            remaining = [n for n in self._active_adapter if n != adapter_name]
            if not remaining:
                remaining = self.adapter_names()[:1]
            self._active_adapter = remaining

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """The tensors saved for `adapter_name`; keys drop the adapter name (HF's file layout).
        Entries a `BufferDict` holds as non-persistent buffers are left out (they are regenerated)."""
        out: list[AdapterTensor] = []
        for attr, container, entry in self._held_entries(adapter_name):
            if isinstance(entry, nn.Module):
                for key, tensor in entry.state_dict(keep_vars=True).items():
                    out.append(AdapterTensor(f"{attr}.{key}", f"{attr}.{adapter_name}.{key}", tensor))
            elif adapter_name not in getattr(container, "_non_persistent_buffers_set", ()):
                # a non-persistent BufferDict entry (regenerated on load) is not saved, as in Hugging Face PEFT
                out.append(AdapterTensor(attr, f"{attr}.{adapter_name}", entry))
        return out

    def _move_adapter_to_device_of_base_layer(self, adapter_name: str) -> None:
        """Put a new adapter's tensors on the base weight's device; float dtypes follow the base too."""
        ref = _reference_parameter(self.get_base_layer())
        if ref is None:
            return
        device = ref.device
        dtype = ref.dtype if ref.is_floating_point() else None
        for _, container, entry in self._held_entries(adapter_name):
            if isinstance(entry, nn.Module):
                tensors = _entry_tensors(entry)
                if _any_meta(tensors):
                    continue
                if all(_already_at(t, device, dtype) for t in tensors):
                    continue  # nothing to move: skip nn.Module.to, which costs ~30 µs per module
                entry.to(device=device, dtype=dtype)
            elif entry.device != ref.device or (ref.is_floating_point() and entry.dtype != ref.dtype):
                if entry.device.type == "meta":
                    continue
                dtype = ref.dtype if ref.is_floating_point() and not _is_index(entry) else entry.dtype
                container[adapter_name] = _moved(entry, ref.device, dtype)

    def move_adapter_to_base_device(self, adapter_name: str) -> None:
        """Put an adapter's tensors on the base weight's device, keeping their dtype (after loading)."""
        ref = _reference_parameter(self.get_base_layer())
        if ref is None:
            return
        for _, container, entry in self._held_entries(adapter_name):
            if isinstance(entry, nn.Module):
                entry.to(device=ref.device)
            elif entry.device != ref.device:
                container[adapter_name] = _moved(entry, ref.device, entry.dtype)

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        """Keep fp16/bf16 adapter weights in fp32 (HF's `autocast_adapter_dtype=True`)."""
        if not autocast:
            return
        for _, _, entry in self._held_entries(adapter_name):
            if isinstance(entry, nn.Module):
                for param in _entry_parameters(entry):
                    if param.dtype in (torch.float16, torch.bfloat16):
                        param.data = param.data.float()
            elif entry.dtype in (torch.float16, torch.bfloat16):
                entry.data = entry.data.float()

    # -- to implement -----------------------------------------------------------------------
    def update_layer(self, adapter_name: str, **kwargs: Any) -> None:
        """Create the tensors of a new adapter on this layer."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_layer")

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The change an additive adapter makes to `base_layer.weight` (same shape and layout)."""
        raise NotImplementedError(
            f"{type(self).__name__} can't be merged: implement get_delta_weight (additive adapters) or "
            f"merge_adapter_weights / unmerge_adapter_weights."
        )

    def supports_delta_weight(self, adapter_name: str) -> bool:
        """Whether adapter `adapter_name`'s whole effect on this layer is `W + get_delta_weight(...)`: the
        layer then computes what its base layer would with that weight. Methods whose adapters are such
        deltas opt in; conversion to another additive format (e.g. a low-rank SVD) relies on it."""
        return False

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        """Fold one adapter into the base weights. Default: `weight += get_delta_weight(...)`."""
        self.add_to_base_weight(self.get_delta_weight(adapter_name), adapter_name, safe_merge)

    def add_to_base_weight(self, delta: torch.Tensor, adapter_name: str, safe_merge: bool) -> None:
        """`base_layer.weight += delta` for a merge; with `safe_merge` the sum is made apart and checked finite
        first (the base weight is untouched if it is not). Adds in the wider of the two dtypes, rounds once."""
        weight = self.get_base_layer().weight
        if safe_merge:
            merged = (weight.data + delta).to(weight.dtype)
            self._check_finite(merged, adapter_name)
            weight.data = merged
        else:
            weight.data += delta

    def write_merged(
        self, adapter_name: str, safe_merge: bool, weight: torch.Tensor, bias: torch.Tensor | None = None
    ) -> None:
        """Set the base layer's weight (and bias, unless None) to merged values; with `safe_merge` both are
        checked finite first, and nothing is written if one is not."""
        if safe_merge:
            self._check_finite(weight, adapter_name)
            if bias is not None:
                self._check_finite(bias, adapter_name)
        base = self.get_base_layer()
        base.weight.data = weight
        if bias is not None:
            base.bias.data = bias

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        base.weight.data -= self.get_delta_weight(adapter_name)

    def adapted_forward(self, x: torch.Tensor, adapter_names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        """The layer's output on `x` with the adapters `adapter_names` applied in turn (none: the base layer's).

        Implement it instead of `forward` when an adapter transforms the base layer rather than adding to its
        output; the inherited `forward` then calls it with the right adapters for every row."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward (or adapted_forward)")

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The base layer alone when adapters are disabled or merged; else `adapted_forward` with the active
        adapters this layer holds, or, in a mixed-adapter batch, once per group of rows with that group's adapter."""
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:
            return self.batch_forward(plan, x, *args, **kwargs)
        return self.adapted_forward(x, [name for name in self._active_adapter if self.has_adapter(name)], *args, **kwargs)

    def batch_forward(self, plan: BatchPlan, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The inherited `forward`'s output for a mixed-adapter batch (`plan`). Default: `adapted_forward` once per
        group of rows with that group's adapter; a layer that handles the groups together overrides it."""
        held = [name for name in plan.adapter_groups() if self.has_adapter(name)]
        return run_per_group(plan, x, lambda rows, names: self.adapted_forward(rows, names, *args, **kwargs), held)

    def additive_forward(
        self,
        x: torch.Tensor,
        base_args: tuple,
        base_kwargs: dict,
        held: Container[str],
        delta: Callable[[torch.Tensor, str], torch.Tensor],
        what: str,
        cast_to: Literal["base", "input"] | None = None,
    ) -> torch.Tensor:
        """A `forward` for layers that add to their base layer's output: the base layer alone while adapters are
        disabled or merged, else `base_layer(x, *base_args, **base_kwargs)` plus `delta(x, name)` of each active
        adapter in `held` (in a mixed-adapter batch, each row's adapter on its rows; `what` names the layer in
        errors). `cast_to` casts the sum to the dtype of the base layer's output or of `x`."""
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *base_args, **base_kwargs)
        result = self.base_layer(x, *base_args, **base_kwargs)
        out = add_adapter_deltas(x, result, self.active_adapters, held, delta, what)
        if cast_to is None:
            return out
        return out.to(result.dtype if cast_to == "base" else x.dtype)

    # -- merging ----------------------------------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        """Merge the given (default: active) adapters into the base layer."""
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [name for name in names if self.has_adapter(name)]
        already = [name for name in names if name in self.merged_adapters]
        names = [name for name in names if name not in self.merged_adapters]
        if already:  # Hugging Face PEFT's wording, which programs match on
            warnings.warn(
                f"Already following adapters were merged {','.join(already)}. You are now additionally merging "
                f"{','.join(names)}." if names else "All adapters are already merged, nothing to do.",
                stacklevel=2,
            )
        for name in names:
            self.merge_adapter_weights(name, safe_merge)
            self.merged_adapters.append(name)

    def check_safe_merge(self, adapter_names: Sequence[str] | None = None) -> None:
        """safe_merge's first pass: merge into copies of the base parameters, check that they stay finite,
        and put the originals back (bit for bit). Raises like `merge(safe_merge=True)` would."""
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [n for n in names if self.has_adapter(n) and n not in self.merged_adapters]
        if not names:
            return
        params = [p for p in self.get_base_layer().parameters() if p.is_floating_point()]
        originals = [(p, p.data) for p in params]
        for p in params:
            p.data = p.data.clone()
        try:
            for name in names:
                try:
                    self.merge_adapter_weights(name, True)
                except NotImplementedError:  # a layer with a merge of its own (it checks safe_merge itself)
                    return
                for p in params:
                    self._check_finite(p.data, name)
        finally:
            for p, data in originals:
                p.data = data

    def unmerge(self) -> None:
        while self.merged_adapters:
            self.unmerge_adapter_weights(self.merged_adapters.pop())

    def _check_finite(self, tensor: torch.Tensor, adapter_name: str) -> None:
        if not torch.isfinite(tensor).all():
            from ..errors import AdapterStateError

            raise AdapterStateError(
                f"safe_merge: merging adapter {adapter_name!r} into {type(self.get_base_layer()).__name__} would "
                f"produce non-finite weights (NaN/inf); no base weight of the model was changed. The adapter is "
                f"probably broken (check its training)."
            )

    def _unmerge_if_disabled(self) -> bool:
        """When adapters are disabled, undo merges and report that the base layer alone should run."""
        if not self._disable_adapters:
            return False
        if self.merged:
            self.unmerge()
        return True


def _plain_module_init(cls: type) -> bool:
    """Whether `super().__init__()` in BaseTunerLayer.__init__ is nn.Module's own (no mixin between)."""
    found = _PLAIN_INIT_CLASSES.get(cls)
    if found is None:
        mro = cls.__mro__
        found = _PLAIN_INIT_CLASSES[cls] = mro[mro.index(BaseTunerLayer) + 1] is nn.Module
    return found


_PLAIN_INIT_CLASSES: dict[type, bool] = {}


def _entry_parameters(entry: nn.Module | nn.Parameter) -> Iterable[nn.Parameter]:
    """The parameters of one adapter entry (a module, or a parameter of a ParameterDict). Leaf
    modules (the usual `nn.Linear` factors) are read directly: `Module.parameters()` walks the
    module tree through generators, which dominated the per-layer cost of creating adapters."""
    if isinstance(entry, nn.Parameter):
        return (entry,)
    if not isinstance(entry, nn.Module):
        return ()
    if entry._modules:
        return entry.parameters()
    params = [p for p in entry._parameters.values() if p is not None]
    return params if len(params) < 2 or len({id(p) for p in params}) == len(params) else entry.parameters()


def _is_index(entry: torch.Tensor) -> bool:
    """Integer or boolean tensors (index lists, masks) never take a float dtype."""
    return not (entry.is_floating_point() or entry.is_complex())


def _moved(entry: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`entry` on `device` in `dtype`: a parameter stays a parameter, a buffer (BufferDict entry) a buffer."""
    if isinstance(entry, nn.Parameter):
        return nn.Parameter(entry.data.to(device=device, dtype=dtype), requires_grad=entry.requires_grad)
    return entry.to(device=device, dtype=dtype)


def _reference_parameter(base: nn.Module) -> nn.Parameter | None:
    """The first parameter of `base` that is not on the meta device (`base.parameters()` order)."""
    for p in base.parameters() if base._modules else base._parameters.values():
        if p is not None and not p.is_meta:
            return p
    return None


def _entry_tensors(entry: nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers of an adapter entry module (what `Module.to` moves)."""
    if entry._modules:
        return [*entry.parameters(), *entry.buffers()]
    return [t for t in (*entry._parameters.values(), *entry._buffers.values()) if t is not None]


def _any_meta(tensors: Iterable[torch.Tensor]) -> bool:
    for t in tensors:
        if t.is_meta:
            return True
    return False


def _already_at(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> bool:
    """Whether `Module.to(device=device, dtype=dtype)` would leave `tensor` as it is."""
    if tensor.device != device or tensor.is_complex():
        return False
    return dtype is None or not tensor.is_floating_point() or tensor.dtype == dtype
