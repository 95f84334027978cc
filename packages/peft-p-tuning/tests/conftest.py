"""peft-p-tuning's tests: tiny models and inputs come from the kit (`peft_core.testing.tasks`)."""

import peft_p_tuning  # noqa: F401  (registers the method)
import torch

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared machine
