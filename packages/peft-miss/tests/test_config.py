"""MissConfig: the same fields and defaults as Hugging Face's (bad values are the kit's `bad_config` check)."""

from peft_core.testing.hf import config_differences, hf_peft_or_skip

from peft_miss import MissConfig


def test_fields_and_defaults_equal_hf():
    assert not config_differences(MissConfig, hf_peft_or_skip().MissConfig)
    assert MissConfig().peft_type == "MISS"
