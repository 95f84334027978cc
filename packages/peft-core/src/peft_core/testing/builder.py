"""The short way to declare conformance cases: the config class once, each case as config fields.

    def conformance() -> Conformance:
        return Conformance.of(
            MyConfig,
            on(models.MLP, r=4, second=dict(r=2, target_modules=["lin1"])),
            on(models.LLAMA, r=4, target_modules=None),  # None: the method's default targets
            random_init={"init_weights": False},
            hf=True,
        )

`on(model, **fields)` fills what the tiny model already knows: its usual `target_modules` (the MLP's
`lin0`/`lin1`/`lin2`, Llama's `q_proj`/`v_proj`/`down_proj`, ...) and its `task_type` (`CAUSAL_LM` for
Llama and GPT-2, ...). A field given explicitly, `None` included, wins. `Conformance.of` builds the
same `Case`s and `Conformance` one would write by hand, so ready `Case`s can be mixed in.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

from .declare import Case, TinyModel

if TYPE_CHECKING:
    from ..config import PeftConfig

# Case options `on` takes next to the config fields (Case's own fields, less the ones it builds).
CASE_OPTIONS = tuple(f.name for f in dataclasses.fields(Case) if f.name not in ("name", "model", "config", "second"))

ConfigFields = Union[Mapping[str, Any], Callable[[], "PeftConfig"]]

@dataclass(frozen=True, eq=False)
class CaseSpec:
    """A case waiting for its config class (see `on`); `Conformance.of` turns it into a `Case` (its `bind`)."""

    name: str
    model: TinyModel
    fields: Mapping[str, Any]
    second: ConfigFields | None
    options: Mapping[str, Any]

    def bind(self, config_cls: type[PeftConfig]) -> Case:
        clash = sorted(set(self.options) & {f.name for f in dataclasses.fields(config_cls)})
        if clash:
            raise TypeError(
                f"case {self.name!r}: {config_cls.__name__} has fields named like Case options {clash}; "
                f"declare this case with Case(...) instead of on(...)"
            )
        second = None if self.second is None else self._factory(config_cls, self.second)
        return Case(self.name, self.model, self._factory(config_cls, self.fields), second=second, **self.options)

    def _factory(self, config_cls: type[PeftConfig], fields: ConfigFields) -> Callable[[], PeftConfig]:
        if callable(fields):
            return fields
        filled = dict(fields)
        names = {f.name for f in dataclasses.fields(config_cls)}
        if self.model.targets and "target_modules" in names:
            filled.setdefault("target_modules", list(self.model.targets))
        if self.model.task_type is not None and "task_type" in names:
            filled.setdefault("task_type", self.model.task_type)
        return lambda: config_cls(**copy.deepcopy(filled))  # fresh lists and dicts for every config


def on(model: TinyModel, name: str | None = None, *, second: ConfigFields | None = None, **fields: Any) -> CaseSpec:
    """A case of the method on `model`, named `name` (default: the model's name).

    `fields` are the config's fields as a user writes them, plus any `Case` option (`hf`, `exact`,
    `atol`, `rtol`, `bad_values`). `target_modules` and `task_type` default to the model's own
    (`TinyModel.targets` / `.task_type`); give `target_modules=None` for the method's default targets,
    `task_type=None` for a bare `PeftModel`. `second` is the second adapter's fields (filled the same
    way) or a function returning its config; default: the first config.
    """
    options = {k: fields.pop(k) for k in CASE_OPTIONS if k in fields}
    return CaseSpec(name or model.name, model, fields, second, options)
