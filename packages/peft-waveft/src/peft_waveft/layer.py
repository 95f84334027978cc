"""`WaveFTLinear`: an `nn.Linear` (or GPT-2 `Conv1D`) plus a wavelet-domain update per adapter.

Per adapter: `waveft_spectrum [n]` (trained) and the coefficients' fixed positions (`waveft_indices
[2, n]`, regenerated from `random_loc_seed`, never saved). The update places the values in an
`[out, in]` grid, padded by the filter's support (centred, each side even), splits it into the four
sub-bands and runs one inverse 2-D DWT, cropping back to `[out, in]` (see `delta_from_spectrum`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import ConfigError
from peft_core.tuners.layer_containers import unsaved_buffers
from peft_core.tuners.linear_layer import LinearLikeLayer

from .families import reduction
from .idwt import inverse_dwt2


def coefficient_positions(out_features: int, in_features: int, count: int, seed: int) -> torch.Tensor:
    """`[2, count]` (row, column) positions: a seeded CPU permutation of the `out·in` cells, as HF draws it."""
    generator = torch.Generator().manual_seed(seed)
    flat = torch.randperm(out_features * in_features, generator=generator, device="cpu")[:count]
    return torch.stack([flat // in_features, flat % in_features], dim=0)


def delta_from_spectrum(
    spectrum: torch.Tensor, positions: torch.Tensor, shape: tuple[int, int], family: str, use_idwt: bool
) -> torch.Tensor:
    """The `[out, in]` update (unscaled) for coefficient values `spectrum` at `positions`."""
    out_features, in_features = shape
    if not use_idwt:
        grid = torch.zeros(out_features, in_features, device=spectrum.device, dtype=spectrum.dtype)
        return grid.index_put((positions[0], positions[1]), spectrum)
    extra = reduction(family)
    rows, cols = out_features + extra, in_features + extra
    rows, cols = rows + rows % 2, cols + cols % 2  # the sub-bands need even sizes
    grid = torch.zeros(rows, cols, device=spectrum.device, dtype=spectrum.dtype)
    grid = grid.index_put((positions[0] + (rows - out_features) // 2, positions[1] + (cols - in_features) // 2), spectrum)
    half_r, half_c = rows // 2, cols // 2
    signal = inverse_dwt2(
        grid[:half_r, :half_c], grid[:half_r, half_c:], grid[half_r:, :half_c], grid[half_r:, half_c:], family
    )
    if tuple(signal.shape) != (out_features, in_features):  # odd sizes: crop the centre
        top, left = (signal.shape[0] - out_features) // 2, (signal.shape[1] - in_features) // 2
        signal = signal[top : top + out_features, left : left + in_features]
    return signal


class WaveFTLinear(LinearLikeLayer):
    adapter_layer_names = ("waveft_spectrum",)
    other_param_names = (
        "waveft_n_frequency",
        "waveft_scaling",
        "waveft_random_loc_seed",
        "waveft_wavelet_family",
        "waveft_indices",
        "waveft_use_idwt",
    )
    container_types = {"waveft_indices": unsaved_buffers}
    supports_mixed_batch = True

    def update_layer(
        self, adapter_name: str, n_frequency: int, scaling: float, family: str, use_idwt: bool, seed: int, init_weights: bool
    ) -> None:
        if not 0 < n_frequency <= self.in_features * self.out_features:
            raise ConfigError(
                f"WaveFT n_frequency={n_frequency} must be between 1 and the layer's in*out = "
                f"{self.in_features * self.out_features}; lower it (or use n_frequency_pattern)."
            )
        self.waveft_n_frequency[adapter_name] = n_frequency
        self.waveft_scaling[adapter_name] = scaling
        self.waveft_random_loc_seed[adapter_name] = seed
        self.waveft_wavelet_family[adapter_name] = family
        self.waveft_use_idwt[adapter_name] = use_idwt
        positions = coefficient_positions(self.out_features, self.in_features, n_frequency, seed)
        self.waveft_indices.set(adapter_name, positions.to(self.get_base_layer().weight.device), persistent=False)
        values = torch.zeros(n_frequency) if init_weights else torch.randn(n_frequency) * 0.01
        self.waveft_spectrum[adapter_name] = nn.Parameter(values)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _update(self, adapter_name: str) -> torch.Tensor:
        """The scaled `[out, in]` update (the layout `F.linear` takes, also for `Conv1D`)."""
        spectrum = self.waveft_spectrum[adapter_name]
        positions = self.waveft_indices[adapter_name].to(spectrum.device)
        delta = delta_from_spectrum(
            spectrum,
            positions,
            (self.out_features, self.in_features),
            self.waveft_wavelet_family[adapter_name],
            self.waveft_use_idwt[adapter_name],
        )
        return delta * self.waveft_scaling[adapter_name]

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        delta = self._update(adapter_name)
        return delta.T if self.fan_in_fan_out else delta

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        update = self._update(name)
        return F.linear(x.to(update.dtype), update)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.waveft_spectrum, self._delta, "a WaveFT layer", cast_to="input")
