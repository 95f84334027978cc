"""Peek at the weights saved next to a config being loaded (`peft_core.saved_tensors`: no tensor data).

Hugging Face PEFT's BOFT needs a CUDA extension for more than one butterfly factor; without it (e.g. on
CPU) HF silently builds `boft_R` with a single factor while the saved config keeps the requested
`boft_n_butterfly_factor`. The shape of the saved `boft_R` (`[factors, blocks, b, b]`) tells what was
really trained, so the loader follows the file instead of failing on a shape mismatch.
"""

from __future__ import annotations

import os

from peft_core.saved_tensors import saved_tensor_shapes


def saved_butterfly_factors(config_path: str | None) -> int | None:
    """The number of butterfly factors of the `boft_R` tensors saved next to `config_path`, if any."""
    if not config_path or not os.path.isfile(config_path):
        return None
    factors = {shape[0] for key, shape in saved_tensor_shapes(os.path.dirname(config_path)).items()
               if key.split(".")[-1] == "boft_R" and len(shape) == 4}
    return factors.pop() if len(factors) == 1 else None
