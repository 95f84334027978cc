"""What every check shares: building adapted models, running them, comparing outputs, expecting refusals."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..errors import PeftError
from .declare import Case, Conformance, with_overrides
from .models import output_of

OTHER = "other"  # name of the second adapter in the checks


class CheckFailed(AssertionError):
    """A conformance check found the method misbehaving; the message says what and where."""


class CheckSkipped(Exception):
    """A check does not apply here (a missing optional module, nothing declared to check)."""


@dataclass
class Context:
    """The suite being checked and the run's settings."""

    suite: Conformance
    workdir: Path
    ref: str | None = None  # "module:attr" the suite can be imported by (for the fresh interpreter)
    hf: str | bool = "auto"  # "auto": compare with Hugging Face PEFT when it is installed; True: require it
    extra_paths: tuple[str, ...] = ()

    def tmp(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def require_model(case: Case) -> None:
    missing = case.model.missing()
    if missing is not None:
        raise CheckSkipped(f"model {case.model.name!r} needs {missing!r}, which is not installed")


def run(model: nn.Module, case: Case, **kwargs: Any) -> torch.Tensor:
    """The model's main output on the case's inputs (no grad)."""
    inputs = {**case.model.make_inputs(), **kwargs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return output_of(model(**inputs))


def base_output(case: Case) -> torch.Tensor:
    return run(case.model.build(), case)


_WRAPPER_PARTS = ("base_layer", "original_module")  # path components adapter wrappers add


def trained_base_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Base-model tensors an adapter trains in place (e.g. biases under `bias="all"`), by their name in
    the base model: trainable, named after no adapter."""
    from ..tuners.layer import BaseTunerLayer

    adapters = set(getattr(model, "peft_config", {}))
    # inside an adapter layer, only its base layer is the base model's (X-LoRA's experts are LoRA adapters
    # with names of their own, such as `default__0`, that peft_config doesn't list)
    layers = tuple(f"{path}." for path, m in model.get_base_model().named_modules() if isinstance(m, BaseTunerLayer))
    out = {}
    for name, param in model.get_base_model().named_parameters():
        parts = name.split(".")
        in_adapter = any(name.startswith(p) and not name.startswith(f"{p}base_layer.") for p in layers)
        if param.requires_grad and not in_adapter and not adapters & set(parts):
            out[".".join(p for p in parts if p not in _WRAPPER_PARTS)] = param.detach()
    return out


def base_reference(model: nn.Module, case: Case, copies: bool = False) -> nn.Module:
    """The base model as `model` leaves it when its adapters are off: with the base tensors they trained
    in place and, with `copies`, each modules_to_save original replaced by the wrapper's active copy (what
    `unload()` hands back, as in Hugging Face PEFT)."""
    from ..tuners.modules_to_save import ModulesToSaveWrapper

    base = case.model.build()
    state = base.state_dict()
    with torch.no_grad():
        for name, value in trained_base_tensors(model).items():
            state[name].copy_(value)
    if copies:
        for path, module in model.get_base_model().named_modules():
            if isinstance(module, ModulesToSaveWrapper):
                base.get_submodule(path).load_state_dict(module.unwrapped().state_dict())
    return base


def perturb(model: nn.Module, scale: float, seed: int = 0, adapter: str | None = None) -> None:
    """Add noise to every trainable tensor (in name order), as if the adapter had been trained.

    `adapter`: only the tensors named after that adapter (not the base tensors a bias mode trains,
    which the first adapter owns)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
            if adapter is not None and adapter not in name.split("."):
                continue
            if param.requires_grad and param.is_floating_point():
                noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
                param.add_(noise.to(param.device, param.dtype) * scale)


def perturb_active(model: nn.Module, scale: float, seed: int, adapter: str) -> None:
    """`perturb` the tensors of `adapter`, the active adapter. One in inference mode (AdaLoRA's second
    adapters; trained before it was loaded) is made trainable for the moment: its layers know which of
    its tensors train."""
    config = model.peft_config[adapter]
    if not config.inference_mode:
        perturb(model, scale, seed=seed, adapter=adapter)
        return
    config.inference_mode = False
    try:
        model.set_adapter(adapter)
        perturb(model, scale, seed=seed, adapter=adapter)
    finally:
        config.inference_mode = True
        model.set_adapter(adapter)


def config_for(suite: Conformance, case: Case, second: bool = False, random: bool = True):
    config = case.second_config() if second else case.config()
    return with_overrides(config, suite.random_init) if random and suite.random_init is not None else config


def load_target_config(case: Case):
    """The case's config for a model that will receive saved weights (inference mode: prompt-learning
    adapters then hold only the final virtual tokens, as a loaded file does)."""
    return with_overrides(case.config(), {"inference_mode": True})


def adapted(suite: Conformance, case: Case, perturbed: bool = True, second: bool = False, **kwargs: Any):
    """A PeftModel of the case (non-trivial start where declared, noise on the trainable tensors), eval mode.

    `second=True` also adds adapter `OTHER` (its own noise); `default` stays active.
    """
    from ..mapping import get_peft_model

    # the same base weights and random init on every run: a check's verdict can't depend on the draw
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(case.model.build(), config_for(suite, case), **kwargs)
        if perturbed:
            perturb(model, suite.perturb_scale, seed=1)
        if second:
            model.add_adapter(OTHER, config_for(suite, case, second=True))
            model.set_adapter(OTHER)
            if perturbed:
                perturb_active(model, suite.perturb_scale, 2, OTHER)
            model.set_adapter("default")
    return model.eval()


def scale_of(tensor: torch.Tensor) -> float:
    return max(1.0, float(tensor.detach().abs().max()))


def describe_diff(actual: torch.Tensor, expected: torch.Tensor) -> str:
    if actual.shape != expected.shape:
        return f"shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    diff = (actual.double() - expected.double()).abs()
    return f"max abs diff {float(diff.max()):.3g} (output scale {scale_of(expected):.3g})"


def is_close(actual: torch.Tensor, expected: torch.Tensor, case: Case, loosen: float = 1.0) -> bool:
    if actual.shape != expected.shape:
        return False
    actual, expected = actual.double().cpu(), expected.double().cpu()
    return bool(torch.allclose(actual, expected, rtol=case.rtol * loosen, atol=case.atol * loosen * scale_of(expected)))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, case: Case, what: str, loosen: float = 1.0) -> None:
    if not is_close(actual, expected, case, loosen):
        raise CheckFailed(f"{what}: {describe_diff(actual, expected)}")


def assert_same(actual: torch.Tensor, expected: torch.Tensor, case: Case, what: str) -> None:
    """Bit-identical outputs (or within the case's tolerance where it declares `exact=False`)."""
    if case.exact:
        if actual.shape != expected.shape or not torch.equal(actual, expected):
            raise CheckFailed(f"{what} (must be bit-identical): {describe_diff(actual, expected)}")
    else:
        assert_close(actual, expected, case, what)


def assert_differs(actual: torch.Tensor, expected: torch.Tensor, case: Case, what: str) -> None:
    if is_close(actual, expected, case, loosen=10.0):
        raise CheckFailed(f"{what}: {describe_diff(actual, expected)}")


def expect_refusal(action: Callable[[], Any], what: str) -> PeftError:
    """Run `action`; it must raise a PeftError (a clear refusal), nothing else and not succeed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            action()
    except PeftError as exc:
        if not str(exc).strip():
            raise CheckFailed(f"{what}: refused with {type(exc).__name__} but an empty message") from exc
        return exc
    except Exception as exc:  # noqa: BLE001 - any other exception is the finding
        raise CheckFailed(
            f"{what}: raised {type(exc).__name__} ({exc}) instead of a peft_core.errors.PeftError subclass"
        ) from exc
    raise CheckFailed(f"{what}: succeeded, but it must be refused with a PeftError")


def adapter_modules(model: nn.Module) -> list[str]:
    """Names of adapter layers and modules_to_save wrappers inside `model`."""
    from ..tuners.layer import BaseTunerLayer
    from ..tuners.modules_to_save import ModulesToSaveWrapper

    return [n for n, m in model.named_modules() if isinstance(m, (BaseTunerLayer, ModulesToSaveWrapper))]


def tuner_layers(model: nn.Module) -> Iterator[Any]:
    from ..tuners.layer import BaseTunerLayer

    return (m for m in model.modules() if isinstance(m, BaseTunerLayer))


def base_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the frozen tensors (the base model's weights) of a PeftModel."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


def changed_tensors(before: dict[str, torch.Tensor], model: nn.Module, case: Case) -> list[str]:
    now = dict(model.named_parameters())
    return [n for n, t in before.items() if n in now and not is_close(now[n].detach(), t, case)]


def names_with(model: nn.Module, adapter_name: str) -> list[str]:
    """Parameter and buffer names with `adapter_name` as one of their dotted components."""
    keys = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    return [k for k in keys if adapter_name in k.split(".")]


def quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()
