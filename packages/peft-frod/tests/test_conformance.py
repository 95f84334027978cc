"""peft-core's conformance kit on FRoD: every check on every case of `peft_frod.conformance`.

`dtypes` is declared not applicable in peft_frod/conformance.py (every runner skips it): it loads an adapter trained on an fp32 base into a bf16 base, and FRoD's frozen
`U` is solved from the base weight through the (ill-conditioned) shared basis, so 16-bit rounding of
the weight is amplified (by the basis' condition number). Hugging Face PEFT's FRoD has the same
property. test_frod.py checks what does hold on half-precision bases (adapter dtypes, a no-op
start, adapters made on that base)."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestFrodConformance(ConformanceTests):
    method = "frod"
