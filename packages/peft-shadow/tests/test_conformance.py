"""peft-core's conformance kit on `shadow`: every check on every case of `peft_shadow.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestShadowConformance(ConformanceTests):
    method = "shadow"
    # Two checks don't fit the method as Hugging Face PEFT defines it (declared `not_applicable` in
    # peft_shadow/conformance.py, so every runner skips them); tests/test_shadow.py covers both:
    # - state_dict: HF's Shadow files keep the literal component `default` in every key (whatever the adapter's
    #   name), which the kit's state-dict check forbids;
    # - train_step: the last wrapped block's shadow update produces a state nothing reads (the final shadow state
    #   is dropped, the auxiliary loss uses the initial one), so those two MLPs never get a gradient, in HF too.
