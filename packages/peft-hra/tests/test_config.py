"""HRAConfig: the same fields and defaults as Hugging Face's (bad values are the kit's `bad_config` check)."""

from peft_core.testing.hf import config_differences, hf_peft_or_skip

from peft_hra import HRAConfig


def test_fields_and_defaults_equal_hf():
    assert not config_differences(HRAConfig, hf_peft_or_skip().HRAConfig)
    assert HRAConfig().peft_type == "HRA"
