"""`LoHaConfig`: Hugging Face PEFT's LoHa config (0.21.2), field for field.

All fields are the shared LyCORIS-family fields of `peft_core.tuners.lycoris.LycorisConfig`
(`r`, `alpha`, `rank_dropout`, `module_dropout`, `use_effective_conv2d`, `init_weights`,
`rank_pattern`, `alpha_pattern`, `target_modules`, `exclude_modules`, `layers_to_transform`,
`layers_pattern`, `modules_to_save`); LoHa adds none. Every field is implemented, so nothing is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core.tuners.lycoris import LycorisConfig


@dataclass
class LoHaConfig(LycorisConfig):
    """Configuration of a LoHa adapter: ΔW = (w1_a @ w1_b) ⊙ (w2_a @ w2_b) · alpha / r.

    Same fields and defaults as Hugging Face PEFT 0.21.2's `LoHaConfig`; see the package README
    for the options table.
    """

    peft_type: str = field(default="LOHA", metadata={"help": "Always 'LOHA'."})
