"""Checks of several adapters: add / set / delete leave nothing behind; mixed-adapter batches equal
per-row runs (or are refused)."""

from __future__ import annotations

import torch

from ..tuners.mixed_batch import BASE_ADAPTER_NAME
from .declare import Case
from .harness import (
    OTHER,
    CheckFailed,
    Context,
    adapted,
    assert_close,
    assert_differs,
    assert_same,
    config_for,
    expect_refusal,
    names_with,
    perturb_active,
    quiet,
    run,
)


def _trainable_owners(model) -> set[str]:
    """Adapter names owning a trainable tensor ('default', 'other', ...)."""
    owners: set[str] = set()
    names = set(model.peft_config)
    for name, param in model.named_parameters():
        if param.requires_grad:
            owners |= names & set(name.split("."))
    return owners


def _unwrapped_keys(model) -> set[str]:
    """State-dict keys without `base_layer` components (a layer wrapped only for a deleted adapter may
    stay wrapped, as in Hugging Face PEFT; its tensors are the same)."""
    return {".".join(p for p in key.split(".") if p != "base_layer") for key in model.state_dict()}


def check_adapters(ctx: Context, case: Case) -> None:
    """add_adapter / set_adapter / delete_adapter: outputs follow the active adapter, only it trains
    (unless in inference mode), and deleting an adapter removes every tensor it added."""
    model = adapted(ctx.suite, case)
    first = run(model, case)
    keys = _unwrapped_keys(model)
    count = sum(p.numel() for p in model.parameters())

    quiet(lambda: model.add_adapter(OTHER, config_for(ctx.suite, case, second=True)))
    assert_same(run(model, case), first, case, "adding an (inactive) adapter changed the output")
    if not names_with(model, OTHER):
        raise CheckFailed(f"add_adapter({OTHER!r}) created no tensor named after the adapter")
    model.set_adapter(OTHER)
    owners = _trainable_owners(model)
    # a second adapter declared in inference mode (AdaLoRA trains one adapter at a time) stays frozen
    want = set() if model.peft_config[OTHER].inference_mode else {OTHER}
    if owners != want:
        raise CheckFailed(f"after set_adapter({OTHER!r}) the trainable tensors belong to {sorted(owners)}, expected {sorted(want)}")
    perturb_active(model, ctx.suite.perturb_scale, 2, OTHER)
    other = run(model, case)
    assert_differs(other, first, case, f"set_adapter({OTHER!r}) did not change the output")
    model.set_adapter("default")
    if _trainable_owners(model) != {"default"}:
        raise CheckFailed(f"after set_adapter('default') the trainable tensors belong to {sorted(_trainable_owners(model))}")
    assert_same(run(model, case), first, case, "output after switching back to 'default'")

    model.set_adapter(OTHER)
    quiet(lambda: model.delete_adapter(OTHER))  # deleting the active adapter falls back to the remaining one
    if model.active_adapters != ["default"]:
        raise CheckFailed(f"after deleting the active adapter, active adapters are {model.active_adapters}")
    left = names_with(model, OTHER)
    if left:
        raise CheckFailed(f"delete_adapter({OTHER!r}) left tensors behind: {left[:5]}")
    now = _unwrapped_keys(model)
    if now != keys:
        extra, missing = sorted(now - keys), sorted(keys - now)
        raise CheckFailed(f"state dict after add + delete differs: extra {extra[:5]}, missing {missing[:5]}")
    if sum(p.numel() for p in model.parameters()) != count:
        raise CheckFailed("the parameter count after add + delete differs from before")
    if list(model.peft_config) != ["default"]:
        raise CheckFailed(f"peft_config after delete_adapter holds {list(model.peft_config)}")
    assert_same(run(model, case), first, case, "output after adding and deleting a second adapter")


def _row_names(rows: int) -> list[str]:
    pattern = [OTHER, "default", BASE_ADAPTER_NAME]
    return [pattern[i % 3] for i in range(rows)]


def check_mixed_batch(ctx: Context, case: Case) -> None:
    """`model(..., adapter_names=[...])` equals, row by row, one run per adapter (or is refused)."""
    model = adapted(ctx.suite, case, second=True)
    rows = next(t for t in case.model.make_inputs().values() if torch.is_tensor(t)).shape[0]
    names = _row_names(rows)
    first = run(model, case)
    if not ctx.suite.mixed_batches:
        expect_refusal(lambda: run(model, case, adapter_names=names), "a mixed-adapter batch (adapter_names=[...])")
        assert_same(run(model, case), first, case, "output after the refused mixed-adapter batch")
        return
    per_adapter = {"default": first}
    model.set_adapter(OTHER)
    per_adapter[OTHER] = run(model, case)
    model.set_adapter("default")
    with model.disable_adapter():
        per_adapter[BASE_ADAPTER_NAME] = run(model, case)
    got = run(model, case, adapter_names=names)
    for row, name in enumerate(names):
        assert_close(got[row], per_adapter[name][row], case, f"row {row} ({name!r}) of a mixed-adapter batch {names}")
    assert_same(run(model, case), first, case, "output after a mixed-adapter batch")
