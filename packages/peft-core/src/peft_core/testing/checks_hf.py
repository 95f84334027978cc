"""Check against Hugging Face PEFT: files of each case load both ways with identical outputs and
the two libraries write the same files. Runs only where the real Hugging Face `peft` is installed."""

from __future__ import annotations

from .declare import Case
from .harness import CheckFailed, CheckSkipped, Context, assert_close, assert_same, config_for, perturb, run
from .hf import both_ways, hf_peft, hf_peft_status


def check_hf_files(ctx: Context, case: Case) -> None:
    """Hugging Face -> us and us -> Hugging Face, bit-identical outputs, same config and tensor layout."""
    hf = ctx.suite.hf
    if hf is None:
        raise CheckSkipped("the method declares no Hugging Face PEFT counterpart")
    if not case.hf:
        raise CheckSkipped("the case is left out of the Hugging Face comparison")
    if ctx.hf is False:
        raise CheckSkipped("Hugging Face comparisons are turned off for this run")
    peft = hf_peft()
    if peft is None:
        if ctx.hf is True:
            raise CheckFailed(f"Hugging Face comparisons were required but {hf_peft_status()}")
        raise CheckSkipped(hf_peft_status())
    ours = config_for(ctx.suite, case)
    try:
        theirs = hf.build_config(config_for(ctx.suite, case), peft)
    except Exception as exc:  # noqa: BLE001 - a declared counterpart HF can't build is the finding
        raise CheckFailed(f"Hugging Face PEFT can't build the counterpart config: {type(exc).__name__}: {exc}") from exc
    exact = case.exact and hf.exact

    def compare(actual, expected, what):
        if exact:
            assert_same(actual, expected, case, what)
        else:
            assert_close(actual, expected, case, what)

    problems = both_ways(
        case.model.build,
        ours,
        theirs,
        lambda model: run(model, case),
        ctx.tmp(f"hf-{case.name}"),
        prepare=lambda model: perturb(model, ctx.suite.perturb_scale, seed=1),
        compare=compare,
    )
    if problems:
        raise CheckFailed("; ".join(problems))
