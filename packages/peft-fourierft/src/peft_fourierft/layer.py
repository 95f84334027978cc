"""FourierFT layer: `y = base(x) + x @ ΔWᵀ` with `ΔW = Re(ifft2(S)) * scaling`.

`S [out, in]` is zero except at `n_frequency` positions drawn once per layer from
`random_loc_seed` (HF: `randperm(out * in, generator=Generator().manual_seed(seed))[:n]`, row
`idx // in`, column `idx % in`), where it holds the trainable `fourierft_spectrum`. ΔW is always
computed in fp32 (`ifft2` has no half-precision CPU kernel) and cast to the spectrum's dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core.tuners.linear_targets import is_transformers_conv1d as is_conv1d
from peft_core.tuners.linear_layer import LinearLikeLayer


def frequency_indices(out_features: int, in_features: int, n_frequency: int, seed: int) -> torch.Tensor:
    """`[2, n_frequency]` (row, column) positions, exactly as HF draws them (CPU generator).

    Always made on the CPU, also under a `torch.device("meta")` context (`low_cpu_mem_usage=True`):
    the positions are not saved, so they must be real.
    """
    generator = torch.Generator().manual_seed(seed)
    flat = torch.randperm(out_features * in_features, generator=generator, device="cpu")[:n_frequency]
    return torch.stack([flat // in_features, flat % in_features], dim=0)


class FourierFTLinear(LinearLikeLayer):
    """FourierFT on `nn.Linear` or transformers' `Conv1D` (`fan_in_fan_out=True`)."""

    adapter_layer_names = ("fourierft_spectrum",)
    other_param_names = ("fourierft_n_frequency", "fourierft_scaling", "fourierft_random_loc_seed", "fourierft_indices")
    container_types = {}
    supports_mixed_batch = True

    def update_layer(
        self, adapter_name: str, n_frequency: int, scaling: float, random_loc_seed: int, init_weights: bool
    ) -> None:
        if n_frequency <= 0:
            raise ValueError(f"n_frequency must be a positive integer, got {n_frequency}.")
        size = self.in_features * self.out_features
        if n_frequency > size:
            raise ValueError(
                f"n_frequency={n_frequency} exceeds the number of weight entries of this layer "
                f"({self.out_features} x {self.in_features} = {size}); lower it (n_frequency_pattern sets it per layer)."
            )
        self.fourierft_n_frequency[adapter_name] = n_frequency
        self.fourierft_scaling[adapter_name] = scaling
        self.fourierft_random_loc_seed[adapter_name] = random_loc_seed
        self.fourierft_indices[adapter_name] = frequency_indices(
            self.out_features, self.in_features, n_frequency, random_loc_seed
        )
        # Drawn from the global RNG like HF (also with init_weights=True), so seeded inits match.
        self.fourierft_spectrum[adapter_name] = nn.Parameter(torch.randn(n_frequency))
        if init_weights:
            with torch.no_grad():
                self.fourierft_spectrum[adapter_name].zero_()
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta_out_in(self, adapter_name: str) -> torch.Tensor:
        """ΔW in `[out, in]` layout (what `F.linear` needs), in the spectrum's dtype."""
        spectrum = self.fourierft_spectrum[adapter_name]
        indices = self.fourierft_indices[adapter_name].to(spectrum.device)
        dense = torch.zeros(self.out_features, self.in_features, device=spectrum.device, dtype=torch.float32)
        dense[indices[0], indices[1]] = spectrum.float()
        delta = torch.fft.ifft2(dense).real * self.fourierft_scaling[adapter_name]
        return delta.to(spectrum.dtype)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.fourierft_spectrum  # y = base(x) + ΔW x

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        delta = self._delta_out_in(adapter_name)
        return delta.T if self.fan_in_fan_out else delta

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.fourierft_spectrum, self._delta, "a FourierFT layer", cast_to="input")

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        delta = self._delta_out_in(adapter_name)
        return F.linear(x.to(delta.dtype), delta)
