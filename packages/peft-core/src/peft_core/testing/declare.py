"""What a method package declares about itself for the conformance kit.

A method package ships a `Conformance` in its installed source (e.g. `peft_lora/conformance.py`) and
names it with an entry point, so the kit can run against an installed wheel without the package's
`tests/` folder:

    [project.entry-points."peft.conformance"]
    lora = "peft_lora.conformance:conformance"

The entry point's value is a `Conformance` or a function returning one. Nothing here imports
transformers: kit models that need it import it when they are built.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..tuners.prompt_config import PromptLearningConfig

if TYPE_CHECKING:
    from types import ModuleType

    from ..config import PeftConfig

CONFORMANCE_ENTRY_POINT_GROUP = "peft.conformance"


@dataclass(frozen=True, eq=False)
class TinyModel:
    """A small base model with random weights, and the inputs the checks feed it.

    `factory()` builds the model (called once per process under `torch.manual_seed(seed)`; checks
    get deep copies, in eval mode). `inputs()` returns the keyword arguments of one forward call,
    every tensor with the batch on dim 0 (at least 3 rows, so mixed-adapter batches can mix). The
    output is a tensor or has `.logits` / `.start_logits` / `.last_hidden_state`.
    `requires` names importable modules the model needs (e.g. "transformers"); cases on it are
    skipped, with a reason, where one is missing (a release-verification venv has no transformers).
    `targets` (the layers an adapter usually targets on it) and `task_type` are what `on(...)` cases
    fill into a config that doesn't name its own.
    """

    name: str
    factory: Callable[[], nn.Module]
    inputs: Callable[[], dict[str, Any]]
    seed: int = 0
    requires: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    task_type: str | None = None

    def variant(self, name: str, factory: Callable[[], nn.Module] | None = None, **extra: Any) -> TinyModel:
        """This model under another name, its inputs extended by `extra` (e.g. `task_ids=torch.tensor(...)`,
        one per row), optionally built by another `factory`; targets and task type stay."""
        inputs = self.inputs

        def extended() -> dict[str, Any]:
            return {**inputs(), **{k: v.clone() if torch.is_tensor(v) else v for k, v in extra.items()}}

        return dataclasses.replace(self, name=name, factory=factory or self.factory, inputs=extended)

    def missing(self) -> str | None:
        """The first module in `requires` that can't be imported, or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return module
        return None

    def build(self) -> nn.Module:
        """A fresh copy of the model (the same weights every call), in eval mode."""
        cached = _BUILT.get(id(self))
        if cached is None or cached[0] is not self:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                module = self.factory().eval()
            cached = _BUILT[id(self)] = (self, module)
        return copy.deepcopy(cached[1])

    def make_inputs(self) -> dict[str, Any]:
        """The forward keyword arguments (the same values every call)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 1)
            return dict(self.inputs())


_BUILT: dict[int, tuple[TinyModel, nn.Module]] = {}


@dataclass(frozen=True, eq=False)
class Case:
    """One configuration of the method on one model.

    `config` returns the adapter's config as a user would write it (the kit applies the suite's
    `random_init` on top where it wants a non-trivial start). `second` is the config of a second
    adapter (add/set/delete, mixed batches, sub-folder saving); default: `config`. `hf=False`
    leaves the case out of the Hugging Face comparison. Outputs that must be bit-identical (save ->
    load, disable, unload) are compared exactly unless `exact=False`; approximate comparisons
    (merging, mixed batches, dtype moves) use `atol` (scaled by the output's magnitude) and `rtol`.
    """

    name: str
    model: TinyModel
    config: Callable[[], PeftConfig]
    second: Callable[[], PeftConfig] | None = None
    hf: bool = True
    exact: bool = True
    atol: float = 1e-5
    rtol: float = 1e-4
    bad_values: Sequence[Mapping[str, Any]] = ()

    def second_config(self) -> PeftConfig:
        return (self.second or self.config)()


@dataclass(frozen=True, eq=False)
class HuggingFace:
    """How the method maps to Hugging Face PEFT, for the both-ways file checks.

    `config(ours, peft)` builds HF's config from ours (default: `peft.get_peft_config` of our
    config's fields, which works when the config is HF's field for field). `exact=False` compares
    outputs with the case's tolerance instead of bit-for-bit.
    """

    config: Callable[[PeftConfig, ModuleType], Any] | None = None
    exact: bool = True

    def build_config(self, ours: PeftConfig, peft: ModuleType) -> Any:
        if self.config is not None:
            return self.config(ours, peft)
        fields = {k: v for k, v in ours.to_dict().items() if k != "peft_version"}
        return peft.get_peft_config(fields)


@dataclass(frozen=True, eq=False)
class Conformance:
    """A method package's conformance declaration: its cases and what the method can do.

    - `cases`: at least one; cover every kind of layer / model the method supports.
    - `random_init`: config overrides that make a fresh adapter change the output (e.g.
      `{"init_lora_weights": False}`; `{}` when the default already does); None if the method has no
      such switch. The kit checks the switch is honoured and uses it wherever it wants a non-trivial
      adapter.
    - `noop_init`: config overrides under which a fresh adapter leaves the output unchanged
      (default `{}`: the config as written); None if the method never starts as a no-op.
    - `merge`: False if the method can't merge; then `merge_adapter` / `merge_and_unload` must
      refuse with a `PeftError` and leave the model as it was.
    - `mixed_batches`: False if `adapter_names=[...]` must be refused (with a `PeftError`).
    - `autocast`: False if the method keeps its adapter tensors in the base's dtype even with
      `autocast_adapter_dtype=True` (LN tuning's copies of base modules, as in Hugging Face PEFT).
    - `hf`: a `HuggingFace` if Hugging Face PEFT has the method (files must load both ways).
    - `bad_values`: config overrides, each of which must be refused with `ConfigError` (on top of the
      kit's generic ones: an unknown task type, a negative rank, a dropout of 1.5 ...).
    - `perturb_scale`: the size of the noise the kit adds to trainable tensors ("as if trained").
    - `not_applicable`: check name -> why the method can't meet it (e.g. FRoD adapters don't carry
      between fp32 and bf16 bases, as in Hugging Face PEFT); every runner reports those checks as
      skipped with the reason (the package's tests, `python -m peft_core.testing`, the release tool).
    """

    method: str
    cases: Sequence[Case]
    random_init: Mapping[str, Any] | None = None
    noop_init: Mapping[str, Any] | None = field(default_factory=dict)
    merge: bool = True
    mixed_batches: bool = True
    autocast: bool = True
    hf: HuggingFace | None = None
    bad_values: Sequence[Mapping[str, Any]] = ()
    perturb_scale: float = 0.1
    not_applicable: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config_cls: type[PeftConfig], *cases: Any, **fields: Any) -> Conformance:
        """The declaration with the config class named once (see `peft_core.testing.builder`): `cases`
        are `on(...)` specs or ready `Case`s; `method` defaults to the config's `peft_type` in lower
        case, `hf=True` stands for `HuggingFace()`, a prompt-learning config starts from what every
        virtual-token method declares. Other fields as in the class."""
        return cls(**declaration_fields(config_cls, cases, fields))

    def case(self, name: str) -> Case:
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(f"{self.method} declares no conformance case {name!r}; cases: {[c.name for c in self.cases]}")


def with_overrides(config: PeftConfig, overrides: Mapping[str, Any] | None) -> PeftConfig:
    """A copy of `config` with `overrides` applied (validated again, as a user's config would be)."""
    if not overrides:
        return copy.deepcopy(config)
    return dataclasses.replace(copy.deepcopy(config), **dict(overrides))


# What every prompt-learning (virtual-token) method is: random from the start and never a no-op, nothing
# to merge into weights, one prompt for the whole batch. `Conformance.of` starts such a config's
# declaration from these; a declaration can still say otherwise.
PROMPT_LEARNING = {"random_init": {}, "noop_init": None, "merge": False, "mixed_batches": False}


def declaration_fields(config_cls: type[PeftConfig], cases: Sequence[Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """`Conformance`'s fields for `Conformance.of(config_cls, *cases, **fields)`."""
    declared = dict(PROMPT_LEARNING) if issubclass(config_cls, PromptLearningConfig) else {}
    declared.update(fields)
    declared.setdefault("method", _method_of(config_cls))
    # `on(...)` specs (peft_core.testing.builder) bind to the config class; ready `Case`s are kept
    declared["cases"] = tuple(c if isinstance(c, Case) else c.bind(config_cls) for c in cases)
    if declared.get("hf") is True:
        declared["hf"] = HuggingFace()
    return declared


def _method_of(config_cls: type) -> str:
    declared = next((f.default for f in dataclasses.fields(config_cls) if f.name == "peft_type"), None)
    if not isinstance(declared, str):
        raise TypeError(f"{config_cls.__name__} declares no peft_type default; pass method= to Conformance.of")
    return declared.lower()
