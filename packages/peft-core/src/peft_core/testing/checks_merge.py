"""Checks of merging: merged and unmerged forwards agree, unmerge restores the base weights,
unload hands back the base model; a method that can't merge refuses clearly and changes nothing."""

from __future__ import annotations

from .declare import Case
from .harness import (
    CheckFailed,
    Context,
    adapted,
    adapter_modules,
    assert_close,
    assert_same,
    base_reference,
    base_tensors,
    changed_tensors,
    expect_refusal,
    quiet,
    run,
    tuner_layers,
)


def _refuses(model, case: Case, action, what: str) -> None:
    before_out = run(model, case)
    before = base_tensors(model)
    expect_refusal(action, what)
    changed = changed_tensors(before, model, case)
    if changed:
        raise CheckFailed(f"{what} was refused but changed base weights {changed[:5]}")
    assert_same(run(model, case), before_out, case, f"output after the refused {what}")


def _merged_models(ctx: Context, case: Case, call: str):
    """For safe_merge False and True: (description, fresh adapted model, its output, the merge call);
    for a method declared unable to merge, checks instead that the call is refused."""
    for safe in (False, True):
        what = f"{call}(safe_merge={safe})"
        model = adapted(ctx.suite, case)
        action = lambda m=model, s=safe: getattr(m, call)(safe_merge=s)  # noqa: E731
        if not ctx.suite.merge:
            _refuses(model, case, action, what)
            continue
        yield what, model, run(model, case), action


def check_merge(ctx: Context, case: Case) -> None:
    """`merge_adapter()` and `merge_adapter(safe_merge=True)` give the unmerged output and change base weights."""
    for what, model, expected, action in _merged_models(ctx, case, "merge_adapter"):
        before = base_tensors(model)
        quiet(action)
        if not any(layer.merged for layer in tuner_layers(model)):
            raise CheckFailed(f"after {what} no adapter layer reports merged")
        if not changed_tensors(before, model, case):
            raise CheckFailed(f"{what} changed no base weight")
        assert_close(run(model, case), expected, case, f"output after {what} differs from the unmerged output")


def check_unmerge(ctx: Context, case: Case) -> None:
    """`unmerge_adapter()` after a merge restores the base weights and the unmerged output."""
    model = adapted(ctx.suite, case)
    expected = run(model, case)
    if not ctx.suite.merge:
        quiet(model.unmerge_adapter)  # nothing merged: a no-op
        assert_same(run(model, case), expected, case, "unmerge_adapter() of a never-merged adapter changed the output")
        return
    before = base_tensors(model)
    quiet(model.merge_adapter)
    quiet(model.unmerge_adapter)
    if any(layer.merged for layer in tuner_layers(model)):
        raise CheckFailed("after unmerge_adapter() an adapter layer still reports merged")
    changed = changed_tensors(before, model, case)
    if changed:
        raise CheckFailed(f"unmerge_adapter() did not restore the base weights of {changed[:5]}")
    assert_close(run(model, case), expected, case, "output after merge_adapter() + unmerge_adapter()")


def check_merge_and_unload(ctx: Context, case: Case) -> None:
    """`merge_and_unload()` (also with safe_merge) returns a plain model giving the adapted output."""
    for what, _, expected, action in _merged_models(ctx, case, "merge_and_unload"):
        merged = quiet(action)
        left = adapter_modules(merged)
        if left:
            raise CheckFailed(f"{what} left adapter layers in the model: {left[:5]}")
        assert_close(run(merged, case), expected, case, f"output of the model returned by {what}")


def check_unload(ctx: Context, case: Case) -> None:
    """`unload()` returns the base model without adapter layers, giving the base output (with the
    active modules_to_save copies in place of the originals and the base tensors a bias mode trained,
    as in Hugging Face PEFT)."""
    model = adapted(ctx.suite, case)
    expected = run(base_reference(model, case, copies=True), case)
    plain = quiet(model.unload)
    left = adapter_modules(plain)
    if left:
        raise CheckFailed(f"unload() left adapter layers in the model: {left[:5]}")
    assert_same(run(plain, case), expected, case, "output of the model returned by unload()")
