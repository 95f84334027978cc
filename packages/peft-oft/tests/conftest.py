"""peft-oft's tests: tiny random models come from the kit (`peft_core.testing.models`)."""

import peft_oft  # noqa: F401  (registers the "oft" method)
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
