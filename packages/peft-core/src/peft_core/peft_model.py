"""`PeftModel`: a base model plus one method's adapters, with Hugging Face PEFT's user-facing API."""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import types
import warnings
from typing import Any, Iterator, Mapping, Sequence, Unpack

import torch
from torch import nn

from .adapter_files import _open_adapter
from .atomic_files import folder_lock, remove_stale_temp_files
from .config import PeftConfig, write_config_file
from .config_binding import config_metadata
from .delegation import attribute_or_wrapped
from .errors import UnsupportedOperationError
from .hub import HubCommitOptions
from .registry import method_for_config
from .serialization import WriteBatch, save_weights, write_model_card
from .state_dict import LoadReport, get_peft_model_state_dict, set_peft_model_state_dict
from .tuners.mixed_batch import batch_plan, current_batch_plan, follow_expanded_batches
from .tuners.tuner import BaseTuner, ModelSnapshot, validate_adapter_name
from .tuners.walk import modules as walk_modules



def is_transformers_model(model: nn.Module) -> bool:
    """True for a transformers `PreTrainedModel`, checked without importing transformers."""
    return any(c.__name__ == "PreTrainedModel" and c.__module__.startswith("transformers") for c in type(model).__mro__)


def base_model_name_or_path(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
    return name or None


class PeftModel(nn.Module):
    """Wraps `model`; `self.base_model` is the method's tuner and `self.base_model.model` the user's model.

    Parameter names therefore start with `base_model.model.`, as in Hugging Face PEFT.
    """

    def __init__(
        self,
        model: nn.Module,
        peft_config: PeftConfig,
        adapter_name: str = "default",
        autocast_adapter_dtype: bool = True,
        low_cpu_mem_usage: bool = False,
    ) -> None:
        super().__init__()
        validate_adapter_name(adapter_name)
        peft_config = self._prepare_task_config(peft_config)
        tuner_cls = self._tuner_class(peft_config)
        self.base_model = tuner_cls(
            model,
            {adapter_name: peft_config},
            adapter_name,
            low_cpu_mem_usage=low_cpu_mem_usage,
            autocast_adapter_dtype=autocast_adapter_dtype,
        )
        expose_forward_signature(self)

    def _tuner_class(self, peft_config: PeftConfig) -> type[BaseTuner]:
        """Hook: the tuner that injects the first adapter (the method's own; `PeftMixedModel` uses one
        that holds several methods)."""
        return method_for_config(peft_config).model_cls

    def _prepare_task_config(self, peft_config: PeftConfig) -> PeftConfig:
        """Hook for task wrappers (e.g. classification heads become `modules_to_save`)."""
        return peft_config

    def _check_adapter_method(self, peft_config: PeftConfig) -> None:
        """Hook: refuse a new adapter of a method this model can't hold (one method per PeftModel)."""
        current = self.peft_config[next(iter(self.peft_config))].peft_type if self.peft_config else None
        if current is not None and peft_config.peft_type != current:
            raise ValueError(
                f"Cannot add a {peft_config.peft_type} adapter to a model holding {current} adapters; "
                f"one PeftModel holds adapters of a single method (get_peft_model(..., mixed=True) combines methods)."
            )

    def __getattr__(self, name: str) -> Any:
        return attribute_or_wrapped(self, name, "base_model")

    # -- state ------------------------------------------------------------------------------
    @property
    def peft_config(self) -> dict[str, PeftConfig]:
        return self.base_model.peft_config

    @property
    def active_adapter(self) -> str | list[str]:
        return self.base_model.active_adapter

    @property
    def active_adapters(self) -> list[str]:
        return self.base_model.active_adapters

    @property
    def has_active_enabled_adapter(self) -> bool:
        """Whether a forward pass runs an adapter: one is active and its layers are not disabled
        (`disable_adapter()` turns this off)."""
        modules = list(self.base_model.adapter_modules())
        return bool(self.active_adapters) and any(not getattr(m, "_disable_adapters", False) for m in modules)

    @property
    def peft_type(self) -> str:
        return self.peft_config[self.active_adapters[0]].peft_type

    @property
    def active_peft_config(self) -> PeftConfig:
        """The config of the (first) active adapter."""
        return self.peft_config[self.active_adapters[0]]

    def set_requires_grad(self, adapter_names: str | Sequence[str], requires_grad: bool = True) -> None:
        """Turn gradients of the given adapters on or off (e.g. to train an inactive adapter too)."""
        from .functional import set_requires_grad

        set_requires_grad(self.base_model.model, adapter_names, requires_grad=requires_grad)

    def get_layer_status(self) -> list[Any]:
        from .status import get_layer_status

        return get_layer_status(self)

    def get_model_status(self) -> Any:
        from .status import get_model_status

        return get_model_status(self)

    def get_base_model(self) -> nn.Module:
        return self.base_model.model

    # -- forward ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the base model; `adapter_names=[...]` (one per row, '__base__' = none) mixes adapters in a batch."""
        adapter_names = kwargs.pop("adapter_names", None)
        with self._mixed_batch(adapter_names, args, kwargs):
            return self.base_model(*args, **kwargs)

    def generate(self, *args: Any, adapter_names: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """The base model's `generate`, through the method's generation hook; `adapter_names` mixes
        adapters per row (beams and multiple return sequences repeat each row's adapter)."""
        with self._mixed_batch(adapter_names, args, kwargs):
            plan = current_batch_plan()
            if plan is None:
                return self.base_model.generate(*args, **kwargs)
            with follow_expanded_batches(self.get_base_model(), plan):
                return self.base_model.generate(*args, **kwargs)

    @contextlib.contextmanager
    def _mixed_batch(self, adapter_names: Sequence[str] | None, args: tuple, kwargs: dict) -> Iterator[None]:
        if adapter_names is None:
            yield
            return
        adapter_names = list(adapter_names)
        self.base_model.check_adapter_names(adapter_names)
        first = next((a for a in (*args, *kwargs.values()) if torch.is_tensor(a)), None)
        if first is not None and first.dim() > 0 and first.shape[0] != len(adapter_names):
            raise ValueError(
                f"adapter_names has {len(adapter_names)} entries but the batch has {first.shape[0]} rows; "
                f"give exactly one adapter name per row."
            )
        with batch_plan(adapter_names):
            yield

    # -- adapters ---------------------------------------------------------------------------
    def add_adapter(
        self,
        adapter_name: str,
        peft_config: PeftConfig,
        low_cpu_mem_usage: bool = False,
        autocast_adapter_dtype: bool = True,
    ) -> None:
        """Add a new, inactive adapter of the same method (activate it with `set_adapter`)."""
        validate_adapter_name(adapter_name)
        if adapter_name in self.peft_config:
            raise ValueError(f"Adapter {adapter_name!r} already exists; delete it first or choose another name.")
        self._check_adapter_method(peft_config)
        peft_config = self._prepare_task_config(peft_config)
        self.base_model.peft_config[adapter_name] = peft_config
        try:
            self.base_model.inject_adapter(
                self.base_model.model,
                adapter_name,
                low_cpu_mem_usage=low_cpu_mem_usage,
                autocast_adapter_dtype=autocast_adapter_dtype,
            )
        except BaseException:
            self._discard_adapter(adapter_name)
            raise

    def _discard_adapter(self, adapter_name: str) -> None:
        """Undo a half-added adapter so a failed add/load leaves the model as it was."""
        self.base_model.peft_config.pop(adapter_name, None)
        for module in list(self.base_model.adapter_modules()):
            module.delete_adapter(adapter_name)

    def set_adapter(self, adapter_name: str | Sequence[str]) -> None:
        """Make `adapter_name` (or several) the active adapter(s).

        Thread safety: don't call this (or any other method that changes the adapters) while other
        threads run forward passes on this model; they could compute some layers with the old adapter
        and some with the new one. Use `adapter_names=[...]` per call, or a lock (docs: Concepts, Threads).
        """
        self.base_model.set_adapter(adapter_name)

    def delete_adapter(self, adapter_name: str) -> None:
        self.base_model.delete_adapter(adapter_name)

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Run the base model alone inside the block (adapter parameters don't require grad there);
        leaving it restores exactly the previous state."""
        with self.base_model.adapters_disabled():
            yield

    def merge_adapter(self, adapter_names: Sequence[str] | None = None, safe_merge: bool = False) -> None:
        self.base_model.merge_adapter(adapter_names=adapter_names, safe_merge=safe_merge)

    def unmerge_adapter(self) -> None:
        self.base_model.unmerge_adapter()

    def merge_and_unload(
        self, progressbar: bool = False, safe_merge: bool = False, adapter_names: Sequence[str] | None = None
    ) -> nn.Module:
        return self.base_model.merge_and_unload(progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names)

    def unload(self) -> nn.Module:
        return self.base_model.unload()

    # -- parameter counts -------------------------------------------------------------------
    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        trainable = total = 0
        for param in self.parameters():
            n = param.numel()
            total += n
            if param.requires_grad:
                trainable += n
        return trainable, total

    def print_trainable_parameters(self) -> None:
        trainable, total = self.get_nb_trainable_parameters()
        pct = 100 * trainable / total if total else 0.0
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {pct:.4f}")

    # -- saving -----------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        selected_adapters: Sequence[str] | None = None,
        save_embedding_layers: bool | str = "auto",
        is_main_process: bool = True,
        path_initial_model_for_weight_conversion: str | os.PathLike | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write each adapter in Hugging Face PEFT's layout: `default` at the root, others in `<dir>/<name>/`.

        `path_initial_model_for_weight_conversion` (methods that support it, e.g. PiSSA-style inits)
        points to the adapter saved before training and converts the result so it applies to the
        original base weights. `state_dict` (as in Hugging Face PEFT) supplies the tensor values, e.g. a
        full state dict gathered from a sharded (FSDP) model; only `is_main_process=True` writes.
        """
        if kwargs:
            raise TypeError(
                f"save_pretrained got unsupported arguments {sorted(kwargs)}; nothing was written. "
                f"Remove them (they would be silently ignored otherwise)."
            )
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory, but {save_directory!r} is a file.")
        names = list(self.peft_config) if selected_adapters is None else list(selected_adapters)
        unknown = [n for n in names if n not in self.peft_config]
        if unknown:
            raise ValueError(f"selected_adapters {unknown} do not exist; existing adapters: {list(self.peft_config)}.")
        targets = {name: self._adapter_directory(save_directory, name) for name in names}
        if not is_main_process:
            return
        # Every file of every adapter is staged next to its target and renamed into place only once
        # all were written: a failure part-way (full disk, interrupted process) leaves the previous
        # adapters readable, with no mix of old and new files.
        folders = list(dict.fromkeys([save_directory, *targets.values()]))
        created = [d for d in folders if not os.path.isdir(d)]
        try:
            for directory in folders:
                os.makedirs(directory, exist_ok=True)
            # Concurrent savers into these folders wait for each other; temp files of killed saves go.
            with folder_lock(folders), WriteBatch() as batch:
                for directory in folders:
                    remove_stale_temp_files(directory)
                for name, directory in targets.items():
                    state = get_peft_model_state_dict(
                        self, state_dict=state_dict, adapter_name=name, save_embedding_layers=save_embedding_layers
                    )
                    self.base_model.check_adapter_state(name, state)
                    config = copy.deepcopy(self.peft_config[name])
                    if config.base_model_name_or_path is None:
                        config.base_model_name_or_path = base_model_name_or_path(self.get_base_model())
                    auto_mapping = None
                    if config.task_type is None:
                        base_cls = type(self.get_base_model())
                        auto_mapping = {"base_model_class": base_cls.__name__, "parent_library": base_cls.__module__}
                    if path_initial_model_for_weight_conversion is not None:
                        config, state = self.base_model.convert_adapter_for_saving(
                            name, config, state, os.fspath(path_initial_model_for_weight_conversion)
                        )
                    data = config.to_saved_dict(auto_mapping_dict=auto_mapping)
                    # the weights record their config: a crash between the two renames is refused on load
                    save_weights(
                        state, directory, safe_serialization=safe_serialization, batch=batch, metadata=config_metadata(data)
                    )
                    write_config_file(directory, data, batch)
                self._write_model_card(save_directory, names, batch)
        except BaseException:
            for directory in reversed(created):  # folders this call created, if still empty
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            raise

    @staticmethod
    def _adapter_directory(save_directory: str, adapter_name: str) -> str:
        validate_adapter_name(adapter_name)
        directory = save_directory if adapter_name == "default" else os.path.join(save_directory, adapter_name)
        root = os.path.realpath(save_directory)
        if os.path.commonpath([root, os.path.realpath(directory)]) != root:
            raise ValueError(f"Adapter {adapter_name!r} would be saved outside {save_directory!r}; rename it.")
        return directory

    def _write_model_card(self, save_directory: str, names: Sequence[str], batch: WriteBatch | None = None) -> None:
        os.makedirs(save_directory, exist_ok=True)
        write_model_card(save_directory, **self._model_card_fields(names), batch=batch)

    _pipeline_tag: str | None = None

    def _model_card_fields(self, names: Sequence[str]) -> dict[str, Any]:
        base = self.get_base_model()
        base_name = base_model_name_or_path(base)
        tags: list[str] = []
        if is_transformers_model(base):
            tags.append("transformers")
        tags += sorted({self.peft_config[n].peft_type.lower() for n in names})
        if base_name:
            tags.append(f"base_model:adapter:{base_name}")
        tags += list(getattr(base, "model_tags", None) or [])
        return {"base_model": base_name, "tags": tags, "pipeline_tag": self._pipeline_tag}

    def create_or_update_model_card(self, output_dir: str | os.PathLike, tags: Sequence[str] = ()) -> None:
        """Write `README.md` in `output_dir`, or merge this adapter's Hub metadata into the existing one."""
        from .model_card import create_or_update_model_card

        fields = self._model_card_fields(list(self.peft_config))
        fields["tags"] = [*fields["tags"], *tags]
        create_or_update_model_card(output_dir, **fields)

    # -- the Hub ----------------------------------------------------------------------------
    def push_to_hub(
        self,
        repo_id: str,
        *,
        safe_serialization: bool = True,
        selected_adapters: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        max_shard_size: int | str | None = None,
        **options: Unpack[HubCommitOptions],
    ) -> Any:
        """Upload the adapter files (`save_pretrained`'s output and model card) to Hub repo `repo_id`.

        Only the adapter goes up, never the base model's weights. `options` say how to commit
        (`commit_message`, `private`, `token`, `revision`, `create_pr`, ...: `hub.HubCommitOptions`).
        `max_shard_size` is accepted for transformers' `push_to_hub` signature; adapter files are never
        sharded. Returns the `CommitInfo`.
        """
        from .hub import push_to_hub

        def write(folder: str) -> None:
            self.save_pretrained(folder, safe_serialization=safe_serialization, selected_adapters=selected_adapters)
            if tags:
                self.create_or_update_model_card(folder, tags=tags)

        return push_to_hub(write, repo_id, what="adapter", **options)

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        model: nn.Module,
        model_id: str | os.PathLike,
        adapter_name: str = "default",
        is_trainable: bool = False,
        config: PeftConfig | None = None,
        autocast_adapter_dtype: bool = True,
        low_cpu_mem_usage: bool = False,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        subfolder: str | None = None,
        revision: str | None = None,
        load_embedding_layers: bool = False,
        **hub_kwargs: Any,
    ) -> PeftModel:
        """Load an adapter saved by this library or by Hugging Face PEFT onto `model`.

        The wrapper class follows the config's `task_type` when called on `PeftModel` itself.
        `is_trainable=False` (the default) freezes the adapter and puts the model in eval mode.
        The file may change only the adapter (see `set_peft_model_state_dict`);
        `load_embedding_layers=True` also lets it write the model's input/output embedding weights
        (Hugging Face PEFT saves them after a vocabulary resize).
        """
        validate_adapter_name(adapter_name)
        config, weights = _open_adapter(model_id, config, subfolder, revision, **hub_kwargs)
        if is_trainable and config.is_prompt_learning:
            raise UnsupportedOperationError(
                "Prompt-learning adapters can't be loaded as trainable: their files hold only the final virtual "
                "tokens, not the encoder that produced them. Train a new adapter instead."
            )
        config.inference_mode = not is_trainable

        wrapper = cls
        if cls is PeftModel:
            from .task_models import wrapper_for_task

            wrapper = wrapper_for_task(config.task_type)
        pristine = ModelSnapshot(model)
        peft_model = wrapper(
            model,
            config,
            adapter_name,
            autocast_adapter_dtype=autocast_adapter_dtype,
            low_cpu_mem_usage=low_cpu_mem_usage,
        )
        try:
            peft_model._load_weights(
                adapter_name,
                weights,
                is_trainable,
                strict,
                ignore_mismatched_sizes,
                low_cpu_mem_usage,
                autocast_adapter_dtype,
                load_embedding_layers=load_embedding_layers,
            )
        except BaseException:
            pristine.restore(model)  # the weights don't fit: hand the base model back without adapter layers
            raise
        return peft_model

    def load_adapter(
        self,
        model_id: str | os.PathLike,
        adapter_name: str = "default",
        is_trainable: bool = False,
        config: PeftConfig | None = None,
        autocast_adapter_dtype: bool = True,
        low_cpu_mem_usage: bool = False,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        subfolder: str | None = None,
        revision: str | None = None,
        load_embedding_layers: bool = False,
        **hub_kwargs: Any,
    ) -> LoadReport:
        """Load an adapter from disk or the Hub as `adapter_name`, without activating it (use `set_adapter`).

        An adapter of that name that exists already gets the file's weights (as in Hugging Face PEFT,
        which is how transformers' Trainer resumes and loads the best checkpoint); its config stays.
        Returns the missing / unexpected keys (`LoadReport`, empty when the file fits exactly).
        """
        validate_adapter_name(adapter_name)
        config, weights = _open_adapter(model_id, config, subfolder, revision, **hub_kwargs)

        def load_into_adapter() -> Any:
            return self._load_weights(
                adapter_name,
                weights,
                is_trainable,
                strict,
                ignore_mismatched_sizes,
                low_cpu_mem_usage,
                autocast_adapter_dtype,
                load_embedding_layers=load_embedding_layers,
            )

        if adapter_name in self.peft_config:
            existing = self.peft_config[adapter_name]
            if config.peft_type != existing.peft_type:
                raise ValueError(
                    f"Adapter {adapter_name!r} is a {existing.peft_type} adapter but {os.fspath(model_id)!r} holds a "
                    f"{config.peft_type} adapter; load it under another name."
                )
            return load_into_adapter()
        config.inference_mode = not is_trainable
        self.add_adapter(
            adapter_name, config, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
        )
        try:
            return load_into_adapter()
        except BaseException:
            self._discard_adapter(adapter_name)
            raise

    def _load_weights(
        self,
        adapter_name: str,
        weights: Mapping[str, torch.Tensor],
        is_trainable: bool,
        strict: bool,
        ignore_mismatched_sizes: bool,
        low_cpu_mem_usage: bool,
        autocast_adapter_dtype: bool,
        load_embedding_layers: bool = False,
    ) -> LoadReport:
        report = set_peft_model_state_dict(
            self,
            weights,
            adapter_name=adapter_name,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            low_cpu_mem_usage=low_cpu_mem_usage,
            strict=strict,
            load_embedding_layers=load_embedding_layers,
        )
        for module in self.base_model.adapter_modules():
            if module.has_adapter(adapter_name):
                if low_cpu_mem_usage and not autocast_adapter_dtype:
                    # tensors assigned from the file keep its dtype: follow the base layer's, as created ones do
                    follow_base = getattr(module, "_move_adapter_to_device_of_base_layer", None)
                    if follow_base is not None:
                        follow_base(adapter_name)
                module.cast_adapter_dtype(adapter_name, autocast_adapter_dtype)
        if not is_trainable:
            for module in self.base_model.adapter_modules():
                for param in module.adapter_parameters(adapter_name):
                    param.requires_grad_(False)
            self.eval()
        else:  # trainable even while not active (as in Hugging Face PEFT): `set_adapter` alone would not do it
            self.set_requires_grad(adapter_name, True)
        return report


def _warn_if_already_adapted(model: nn.Module) -> None:
    if "peft_config" in model.__dict__ or any(isinstance(m, BaseTuner) for m in walk_modules(model)):
        warnings.warn(
            "This model already has adapter layers; get_peft_model expects an unmodified base model. "
            "Use PeftModel.add_adapter to add another adapter.",
            UserWarning,
            stacklevel=3,
        )


def expose_forward_signature(peft_model: PeftModel) -> None:
    """Give `peft_model.forward` the wrapped model's signature (an instance attribute, as each wrapped model
    differs), so tools that read the accepted arguments from it (transformers' Trainer keeps only the dataset
    columns `forward` names) see `input_ids`, `labels`, ... instead of `*args, **kwargs`."""
    try:
        signature = inspect.signature(peft_model.get_base_model().forward)
    except (TypeError, ValueError):
        return

    def forward(self: PeftModel, *args: Any, **kwargs: Any) -> Any:
        return type(self).forward(self, *args, **kwargs)

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    forward.__signature__ = signature.replace(parameters=[self_param, *signature.parameters.values()])  # type: ignore[attr-defined]
    forward.__doc__ = type(peft_model).forward.__doc__
    peft_model.__dict__["forward"] = types.MethodType(forward, peft_model)
