"""RoAd's cases for peft-core's conformance kit (`python -m peft_core.testing road`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import RoadConfig


def conformance() -> Conformance:
    return Conformance.of(
        RoadConfig,
        on(models.MLP, variant="road_2", group_size=8, second=dict(variant="road_1", group_size=4, target_modules=["lin1"])),
        on(
            models.LLAMA, variant="road_4", group_size=8, target_modules=["q_proj", "v_proj"],
            second=dict(group_size=4, target_modules=["v_proj", "o_proj"]),
        ),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"variant": "road_3"}, {"group_size": 3}, {"group_size": 0}),
    )
