"""BOFTConfig: the same fields and defaults as Hugging Face's (bad values are the kit's `bad_config` check)."""

import pytest
from peft_core.testing.hf import config_differences, hf_peft

from peft_boft import BOFTConfig


def test_fields_and_defaults_equal_hf():
    if hf_peft() is None:
        pytest.skip("Hugging Face PEFT is not installed")
    assert not config_differences(BOFTConfig, hf_peft().BOFTConfig)
    assert BOFTConfig().peft_type == "BOFT"
