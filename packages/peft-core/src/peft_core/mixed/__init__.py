"""Adapters of several methods in one model (`get_peft_model(..., mixed=True)`, `PeftMixedModel`).

A method takes part by registering with `is_mixed_compatible=True`, which promises that its tuner
wraps a module that is already another method's adapter layer (asking `BaseTuner.wrapped_base`)
and that its layers compute on top of whatever they wrap (they call `self.base_layer(...)`).
Each method's own tuner then injects its adapters; core names no method.
"""

from .model import PeftMixedModel
from .tuner import MixedModel, mixed_method

__all__ = ["MixedModel", "PeftMixedModel", "mixed_method"]
