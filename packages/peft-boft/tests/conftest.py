"""peft-boft's tests: tiny random models come from the kit (`peft_core.testing.models`)."""

import peft_boft  # noqa: F401  (registers the "boft" method)
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
