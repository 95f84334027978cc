"""Fixtures for peft-p-tuning's tests; helpers live in _p_tuning_support (put on sys.path here)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(__file__)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peft_p_tuning  # noqa: E402,F401  (registers the method)
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared machine
