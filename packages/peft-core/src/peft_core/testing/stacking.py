"""Several adapters active at once, for packages' own tests of methods whose adapters compose (rotations
in turn, products of scales): the composition is neither adapter alone, and merging all of them gives
the same output as running them unmerged."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .models import output_of


def assert_active_adapters_compose(model: Any, names: Sequence[str], inputs: dict[str, Any], atol: float = 1e-5) -> None:
    """With `names` active together, the output differs from each adapter alone; after `merge_adapter()`
    it equals the unmerged output (within `atol`, relative to 1e-5). Leaves the adapters merged."""

    def out() -> torch.Tensor:
        with torch.no_grad():
            return output_of(model(**inputs))

    model.set_adapter(list(names))
    together = out()
    for name in names:
        model.set_adapter(name)
        assert not torch.allclose(out(), together), f"adapters {list(names)} together act like {name!r} alone"
    model.set_adapter(list(names))
    model.merge_adapter()
    torch.testing.assert_close(out(), together, atol=atol, rtol=1e-5, msg=f"merging {list(names)} changed the output")
