"""RoAd's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing road`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import RoadConfig


def conformance() -> Conformance:
    return Conformance(
        method="road",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: RoadConfig(variant="road_2", group_size=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: RoadConfig(variant="road_1", group_size=4, target_modules=["lin1"]),
            ),
            Case(
                "llama",
                models.LLAMA,
                lambda: RoadConfig(variant="road_4", group_size=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
                second=lambda: RoadConfig(group_size=4, target_modules=["v_proj", "o_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"variant": "road_3"}, {"group_size": 3}, {"group_size": 0},),
    )
