"""Checks of the forward pass: the adapter acts, starts as declared, trains, and can be disabled."""

from __future__ import annotations

import torch

from .declare import Case, with_overrides
from .harness import (
    CheckFailed,
    CheckSkipped,
    Context,
    adapted,
    assert_close,
    assert_differs,
    assert_same,
    base_output,
    base_reference,
    quiet,
    run,
)


def check_changes_output(ctx: Context, case: Case) -> None:
    """A trained-like adapter (noise on every trainable tensor) changes the model's output."""
    expected = base_output(case)
    assert_differs(run(adapted(ctx.suite, case), case), expected, case, "the adapted model's output equals the base model's")


def check_init(ctx: Context, case: Case) -> None:
    """`random_init` gives a fresh adapter that changes the output; `noop_init` one that does not."""
    from ..mapping import get_peft_model

    suite = ctx.suite
    if suite.random_init is None and suite.noop_init is None:
        raise CheckSkipped("the method declares neither random_init nor noop_init")
    expected = base_output(case)
    if suite.random_init is not None:
        config = with_overrides(case.config(), suite.random_init)
        out = run(quiet(lambda: get_peft_model(case.model.build(), config)).eval(), case)
        assert_differs(
            out, expected, case,
            f"a fresh adapter with {dict(suite.random_init)} (the declared non-trivial start) gives the base output; "
            f"the init switch is ignored",
        )
    if suite.noop_init is not None:
        config = with_overrides(case.config(), suite.noop_init)
        out = run(quiet(lambda: get_peft_model(case.model.build(), config)).eval(), case)
        assert_close(out, expected, case, f"a fresh adapter with {dict(suite.noop_init) or 'the default init'} is not a no-op")


def check_train_step(ctx: Context, case: Case) -> None:
    """Only adapter tensors are trainable, every one gets a gradient, and a step changes the output."""
    model = adapted(ctx.suite, case, perturbed=False)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise CheckFailed("get_peft_model left no trainable parameter")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = run(model, case)
    model.train()
    inputs = case.model.make_inputs()
    from .models import output_of

    loss = quiet(lambda: output_of(model(**inputs)).float().pow(2).mean())
    loss.backward()
    no_grad = sorted(n for n, p in trainable.items() if p.grad is None)
    if no_grad:
        raise CheckFailed(f"trainable parameters got no gradient (not used by the forward pass): {no_grad[:5]}")
    if all(float(p.grad.abs().max()) == 0 for p in trainable.values()):
        raise CheckFailed("every gradient of the adapter is zero")
    with torch.no_grad():
        for p in trainable.values():
            p.add_(p.grad / max(1e-12, float(p.grad.abs().max())) * -0.05)
    model.eval()
    moved = [n for n, p in model.named_parameters() if n in frozen and not torch.equal(p, frozen[n])]
    if moved:
        raise CheckFailed(f"frozen base parameters changed in a training step: {moved[:5]}")
    assert_differs(run(model, case), before, case, "a training step on the adapter did not change the output")


def check_disable_adapter(ctx: Context, case: Case) -> None:
    """Inside `disable_adapter()` the output is the base model's (with the base tensors a bias mode trained
    in place); afterwards the adapter is back, flags intact."""
    model = adapted(ctx.suite, case)
    expected_base = run(base_reference(model, case), case)  # bias modes keep their trained biases
    adapted_out = run(model, case)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with model.disable_adapter():
        assert_same(run(model, case), expected_base, case, "output inside disable_adapter() differs from the base model")
    assert_same(run(model, case), adapted_out, case, "output after leaving disable_adapter() differs from before")
    changed = sorted(n for n, p in model.named_parameters() if flags.get(n) != p.requires_grad)
    if changed:
        raise CheckFailed(f"disable_adapter() changed requires_grad of {changed[:5]}")
    if ctx.suite.merge:
        quiet(model.merge_adapter)
        with model.disable_adapter():
            assert_close(run(model, case), expected_base, case, "output inside disable_adapter() of a merged adapter")
        assert_close(run(model, case), adapted_out, case, "output after disable_adapter() of a merged adapter")
