"""peft-miss's tests: tiny random models come from the kit (`peft_core.testing.models`)."""

import peft_miss  # noqa: F401  (registers the "miss" method)
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
