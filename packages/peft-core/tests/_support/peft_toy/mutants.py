"""Deliberately broken variants of the toy method, for the conformance kit's mutation tests.

Each mutant replaces one behaviour of `ToyLinear` (`patches(name)` lists the replacements; `peft_toy`
installs them at import when PEFT_TOY_MUTANT is set). This module imports nothing of `peft_toy`. The first
eight are the kinds of broken method the kit must catch (issue 16); `forgets_a_tensor` breaks saving.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def _forward_ignores_adapter(self, x: torch.Tensor) -> torch.Tensor:
    return self.compute(x, adapter=False)


def _forward_ignores_disable(self, x: torch.Tensor) -> torch.Tensor:
    return self.compute(x, disable=False)


def _forward_ignores_row_plan(self, x: torch.Tensor) -> torch.Tensor:
    return self.compute(x, plan=False)  # every row gets the active adapter, whatever adapter_names says


def _wrong_delta(self, adapter_name: str) -> torch.Tensor:
    a, b = self.toy_A[adapter_name].weight, self.toy_B[adapter_name].weight
    return b @ a  # forgets the per-output scale that the forward applies


def _merge_nothing(self, adapter_name: str, safe_merge: bool) -> None:
    return None


def _unmerge_twice(self, adapter_name: str) -> None:
    self.get_base_layer().weight.data -= 2 * self.get_delta_weight(adapter_name)


def _unmerge_nothing(self, adapter_name: str) -> None:
    return None


def _update_ignores_init(self, adapter_name: str, r: int, init_weights: bool, scaling: float = 1.0) -> None:
    self.make_adapter(adapter_name, r, True, scaling)  # always the no-op start


MUTANTS: dict[str, dict[str, Callable[..., Any]]] = {
    "forward_ignores_adapter": {"forward": _forward_ignores_adapter},
    "forward_ignores_disable": {"forward": _forward_ignores_disable},
    "wrong_merge": {"get_delta_weight": _wrong_delta},
    "missing_merge": {"merge_adapter_weights": _merge_nothing},
    "wrong_unmerge": {"unmerge_adapter_weights": _unmerge_twice},
    "missing_unmerge": {"unmerge_adapter_weights": _unmerge_nothing},
    "mixed_batch_ignores_row_plan": {"forward": _forward_ignores_row_plan},
    "init_weights_ignored": {"update_layer": _update_ignores_init},
}


def patches(name: str) -> dict[str, Any]:
    """attribute of ToyLinear -> replacement for mutant `name` (also `forgets_a_tensor`)."""
    if name == "forgets_a_tensor":
        return {"adapter_layer_names": ("toy_A", "toy_B")}  # toy_scale is neither saved nor loaded
    return dict(MUTANTS[name])
