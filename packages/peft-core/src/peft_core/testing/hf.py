"""Comparing with Hugging Face PEFT: finding the real `peft`, loading files in both directions,
comparing what two libraries wrote. Method packages' own compatibility tests use these helpers too.

The `peft` import name may belong to another distribution (a drop-in package of this project
provides it too), so Hugging Face's is recognised by its distribution: it must be the installed
distribution named `peft` that owns the imported module's file.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import nn

HF_DISTRIBUTION = "peft"
# Fields Hugging Face PEFT writes as (unordered) sets, and the one that names the writer.
SET_FIELDS = ("target_modules", "exclude_modules", "modules_to_save", "feedforward_modules", "target_parameters")
WRITER_FIELDS = ("peft_version",)


@functools.lru_cache(maxsize=1)
def _find_hf_peft() -> tuple[ModuleType | None, str]:
    from importlib import metadata

    try:
        dist = metadata.distribution(HF_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None, "Hugging Face PEFT (distribution 'peft') is not installed"
    if (dist.metadata.get("Name") or "").lower() != HF_DISTRIBUTION:
        return None, f"the distribution found as 'peft' is {dist.metadata.get('Name')!r}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # imported by name: Hugging Face PEFT is an optional reference found at run time, never a dependency
            peft = importlib.import_module(HF_DISTRIBUTION)
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        return None, f"import peft failed: {type(exc).__name__}: {exc}"
    owned = os.path.realpath(str(dist.locate_file("peft/__init__.py")))
    if os.path.realpath(getattr(peft, "__file__", "") or "") != owned:
        return None, f"the importable 'peft' ({peft.__file__}) is not Hugging Face's distribution 'peft' {dist.version}"
    return peft, f"Hugging Face PEFT {dist.version}"


def hf_peft() -> ModuleType | None:
    """Hugging Face's `peft` module, or None when it is absent or `peft` is another distribution."""
    return _find_hf_peft()[0]


def hf_peft_status() -> str:
    """Why `hf_peft()` is None, or which version it found."""
    return _find_hf_peft()[1]


def hf_peft_or_skip() -> ModuleType:
    """Hugging Face's `peft` for a test module's top level; skips the whole module (pytest) where it is absent,
    or where `import peft` is another distribution."""
    peft = hf_peft()
    if peft is None:
        import pytest

        pytest.skip(hf_peft_status(), allow_module_level=True)
    return peft


def read_adapter_config(directory: str | os.PathLike) -> dict[str, Any]:
    """adapter_config.json as compared between libraries: set fields as sets, the writer's version dropped."""
    with open(os.path.join(directory, "adapter_config.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    for key in SET_FIELDS:
        if isinstance(data.get(key), list):
            data[key] = set(data[key])
    for key in WRITER_FIELDS:
        data.pop(key, None)
    return data


def saved_tensor_specs(directory: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """key -> (shape, dtype) of adapter_model.safetensors."""
    from safetensors.torch import load_file

    state = load_file(os.path.join(directory, "adapter_model.safetensors"))
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def compare_saved(ours: str | os.PathLike, theirs: str | os.PathLike) -> list[str]:
    """Differences between two saved adapters' configs (as parsed JSON) and tensor keys/shapes/dtypes."""
    problems: list[str] = []
    a, b = read_adapter_config(ours), read_adapter_config(theirs)
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<missing>") != b.get(key, "<missing>"):
            problems.append(f"config field {key!r}: ours {a.get(key, '<missing>')!r}, Hugging Face {b.get(key, '<missing>')!r}")
    x, y = saved_tensor_specs(ours), saved_tensor_specs(theirs)
    if x != y:
        only_ours = sorted(set(x) - set(y))
        only_theirs = sorted(set(y) - set(x))
        differ = sorted(k for k in set(x) & set(y) if x[k] != y[k])
        problems.append(
            f"saved tensors differ: only ours {only_ours[:4]}, only Hugging Face's {only_theirs[:4]}, "
            f"shape/dtype {[(k, x[k], y[k]) for k in differ[:3]]}"
        )
    return problems


def load_in_hf(base: nn.Module, directory: str | os.PathLike, **kwargs: Any) -> nn.Module:
    """`peft.PeftModel.from_pretrained` (eval mode); fails if Hugging Face warns about unknown config keys."""
    peft = hf_peft()
    if peft is None:
        raise RuntimeError(hf_peft_status())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = peft.PeftModel.from_pretrained(base, os.fspath(directory), **kwargs)
    unexpected = [str(w.message) for w in caught if "Unexpected keyword" in str(w.message)]
    if unexpected:
        raise AssertionError(f"Hugging Face PEFT does not know fields of our config: {unexpected}")
    return model.eval()


def hf_model(base: nn.Module, hf_config: Any, **kwargs: Any) -> nn.Module:
    """Hugging Face PEFT's `get_peft_model(base, hf_config)`, its warnings silenced."""
    peft = hf_peft()
    if peft is None:
        raise RuntimeError(hf_peft_status())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(base, hf_config, **kwargs)


def both_ways(
    make_base: Callable[[], nn.Module],
    ours_config: Any,
    hf_config: Any,
    run: Callable[[nn.Module], torch.Tensor],
    workdir: str | os.PathLike,
    prepare: Callable[[nn.Module], None] = lambda model: None,
    compare: Callable[[torch.Tensor, torch.Tensor, str], None] | None = None,
) -> list[str]:
    """Hugging Face -> us and us -> Hugging Face for one config; returns the problems found.

    Each library adapts a fresh base with its config; `prepare(model)` makes the adapter non-trivial
    (the same way in both); each saves; the other library loads the files onto a fresh base and must
    give the saving model's output (`compare(actual, expected, what)`, default bit-identical). The two
    saved adapters must also agree as files (`compare_saved`).
    """
    from ..mapping import get_peft_model
    from ..peft_model import PeftModel

    compare = compare or _compare_exact
    workdir = Path(workdir)
    problems: list[str] = []
    theirs = hf_model(make_base(), hf_config)
    prepare(theirs)
    theirs.eval()
    expected = run(theirs)
    theirs.save_pretrained(workdir / "hf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = PeftModel.from_pretrained(make_base(), workdir / "hf")
    problems += _collect(compare, run(loaded), expected, "Hugging Face's file loaded here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = get_peft_model(make_base(), ours_config)
    prepare(ours)
    ours.eval()
    expected = run(ours)
    ours.save_pretrained(workdir / "ours")
    try:
        loaded_hf = load_in_hf(make_base(), workdir / "ours")
    except AssertionError as exc:
        problems.append(str(exc))
    else:
        problems += _collect(compare, run(loaded_hf), expected, "our file loaded by Hugging Face PEFT")
    problems += compare_saved(workdir / "ours", workdir / "hf")
    return problems


def several_adapters_both_ways(
    make_base: Callable[[], nn.Module],
    ours_configs: dict[str, Any] | None,
    hf_configs: dict[str, Any],
    run: Callable[[nn.Module], torch.Tensor],
    workdir: str | os.PathLike,
    prepare: Callable[[nn.Module], None] = lambda model: None,
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Several adapters on one model (the first named in the dicts is the model's first adapter), saved
    by one library and loaded adapter by adapter by the other: each loaded adapter must give, bit for
    bit, the output the saving model gave with it; built the same way (`prepare` after all adapters
    exist), both libraries must agree too. `ours_configs=None` checks only Hugging Face -> us.

    Returns the model loaded here from Hugging Face's files and Hugging Face's output per adapter, for
    what a method checks further (a mixed-adapter batch, ...). Raises AssertionError naming the adapter.
    """
    from ..mapping import get_peft_model
    from ..peft_model import PeftModel

    workdir = Path(workdir)
    names = list(hf_configs)
    plans = {"hf": hf_configs}
    if ours_configs is not None:
        plans["ours"] = ours_configs
    expected: dict[str, dict[str, torch.Tensor]] = {}
    for lib, configs in plans.items():
        first = configs[names[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if lib == "hf":
                model = hf_model(make_base(), first, adapter_name=names[0])
            else:
                model = get_peft_model(make_base(), first, adapter_name=names[0])
            for name in names[1:]:
                model.add_adapter(name, configs[name])
        prepare(model)
        model.eval()
        expected[lib] = {}
        for name in names:
            model.set_adapter(name)
            expected[lib][name] = run(model)
        model.save_pretrained(workdir / lib)
    if "ours" in expected:
        for name in names:
            assert torch.equal(expected["ours"][name], expected["hf"][name]), f"adapter {name!r}: outputs differ"

    def load(loader: Callable[..., nn.Module], directory: Path) -> nn.Module:
        def saved(name: str) -> Path:  # both libraries save adapters other than "default" in a subfolder
            return directory if name == "default" else directory / name

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = loader(make_base(), saved(names[0]), adapter_name=names[0])
            for name in names[1:]:
                model.load_adapter(saved(name), adapter_name=name)
        return model.eval()

    loaded_here = load(PeftModel.from_pretrained, workdir / "hf")
    checks = [("Hugging Face's files loaded here", loaded_here, expected["hf"])]
    if "ours" in expected:
        checks.append(("our files loaded by Hugging Face PEFT", load(load_in_hf, workdir / "ours"), expected["ours"]))
    for what, model, outputs in checks:
        for name in names:
            model.set_adapter(name)
            assert torch.equal(run(model), outputs[name]), f"{what}: adapter {name!r} gives another output"
    return loaded_here, expected["hf"]


class RoundTrip(NamedTuple):
    """What `round_trip_adapters` made: each library's adapted model and the folder it saved."""

    hf_model: nn.Module
    our_model: nn.Module
    hf_dir: Path
    our_dir: Path


def assert_equal_outputs(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.equal(actual, expected), (actual - expected).abs().max()


def round_trip_adapters(
    make_base: Callable[[], nn.Module],
    hf_configs: Mapping[str, Any],
    our_configs: Mapping[str, Any],
    run: Callable[[nn.Module], torch.Tensor],
    workdir: str | os.PathLike,
    randomize: Callable[[nn.Module, int], None],
    compare: Callable[[torch.Tensor, torch.Tensor], None] = assert_equal_outputs,
    compare_files: bool = True,
) -> RoundTrip:
    """Hugging Face -> us and us -> Hugging Face for one or several adapters (name -> config, the first is the
    model's first adapter), as a method package's own compatibility tests want them; raises AssertionError.

    Each library adapts a copy of one base, `randomize(model, seed)` makes the adapters non-trivial (seed 1
    for Hugging Face's, 2 for ours), each saves (other adapters in subfolders), the other library loads the
    files (`subfolder=` here, the subfolder path in Hugging Face PEFT) and must give, adapter by adapter,
    the saving model's output (`compare(actual, expected)`). With `compare_files`, the same configs must
    write the same config JSON and tensor keys/shapes/dtypes.
    """
    from ..mapping import get_peft_model
    from ..peft_model import PeftModel

    workdir = Path(workdir)
    names = list(hf_configs)
    base = make_base()
    baseline = run(copy.deepcopy(base).eval())

    def adapted(make: Callable[..., nn.Module], configs: Mapping[str, Any], seed: int, folder: Path) -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. fan_in_fan_out flips warn in both libraries
            model = make(copy.deepcopy(base), configs[names[0]])
            for name in names[1:]:
                model.add_adapter(name, configs[name])
        randomize(model, seed)
        model.save_pretrained(folder)
        return model.eval()

    def check_loaded(loaded: nn.Module, saver: nn.Module, load_other: Callable[[str], None]) -> None:
        compare(run(loaded.eval()), run(saver))
        for name in names[1:]:
            load_other(name)
            loaded.set_adapter(name)
            saver.set_adapter(name)
            compare(run(loaded), run(saver))

    theirs = adapted(hf_model, hf_configs, 1, workdir / "hf")
    assert not torch.equal(run(theirs), baseline), "the adapter is trivial; the test would prove nothing"
    ours = PeftModel.from_pretrained(copy.deepcopy(base), workdir / "hf")
    check_loaded(ours, theirs, lambda name: ours.load_adapter(workdir / "hf", name, subfolder=name))

    our_model = adapted(get_peft_model, our_configs, 2, workdir / "ours")
    hf_loaded = load_in_hf(copy.deepcopy(base), workdir / "ours")
    check_loaded(
        hf_loaded, our_model, lambda name: hf_loaded.load_adapter(workdir / "ours" / name, adapter_name=name)
    )

    if compare_files:
        for name in names:
            sub = "" if name == names[0] else name
            assert compare_saved(workdir / "ours" / sub, workdir / "hf" / sub) == [], name
    return RoundTrip(theirs, our_model, workdir / "hf", workdir / "ours")


def assert_mixed_rows_match(
    model: nn.Module, inputs: Any, names: Sequence[str], expected: Mapping[str, torch.Tensor], atol: float = 1e-6
) -> None:
    """A mixed-adapter batch (`adapter_names=names`, one per row, `__base__` for none) gives, row by row, the
    output `expected[name]` of the whole batch run with that row's adapter alone (as `several_adapters_both_ways`
    returns Hugging Face's); the `__base__` rows are compared with the model run with its adapters disabled."""
    from ..tuners.mixed_batch import BASE_ADAPTER_NAME
    from .models import output_of

    with torch.no_grad():
        mixed = output_of(model(inputs, adapter_names=list(names)))
        with model.disable_adapter():
            base = output_of(model(inputs))
    for row, name in enumerate(names):
        reference = base if name == BASE_ADAPTER_NAME else expected[name]
        assert torch.allclose(mixed[row], reference[row], atol=atol, rtol=0), name


def assert_hf_adapters_mix_here(
    make_base: Callable[[], nn.Module],
    hf_configs: dict[str, Any],
    inputs: Any,
    names: Sequence[str],
    workdir: str | os.PathLike,
) -> None:
    """Several adapters saved by Hugging Face load here adapter by adapter with its outputs
    (`several_adapters_both_ways`, Hugging Face -> us), and a mixed batch of them (`names`, one per row)
    gives each row the output Hugging Face gave with that row's adapter alone (`assert_mixed_rows_match`)."""
    from .models import forward_output

    ours, expected = several_adapters_both_ways(
        make_base, None, hf_configs, lambda model: forward_output(model, inputs), workdir
    )
    assert_mixed_rows_match(ours, inputs, names, expected)


def assert_same_training_draws(
    ours: nn.Module, theirs: nn.Module, inputs: Any, seeds: Iterable[int] = range(4)
) -> list[torch.Tensor]:
    """In training mode and seeded alike, our model draws its dropout (rank, module, ...) as Hugging Face's:
    bit-identical outputs for each seed. Returns our outputs (to check that the draws really vary)."""
    from .models import output_of

    ours.train()
    theirs.train()
    outputs = []
    for seed in seeds:
        torch.manual_seed(seed)
        expected = output_of(theirs(inputs))
        torch.manual_seed(seed)
        outputs.append(output_of(ours(inputs)))
        assert torch.equal(outputs[-1], expected), f"seed {seed}: the draws differ from Hugging Face's"
    return outputs


def assert_both_ways(
    model: Any,
    ours_config: Any,
    hf_config: Any,
    workdir: str | os.PathLike,
    run: Callable[[nn.Module], torch.Tensor] | None = None,
    compare: Callable[[torch.Tensor, torch.Tensor, str], None] | None = None,
    scale: float = 0.1,
) -> None:
    """`both_ways` on a kit `TinyModel` with its inputs, adapters given the kit's "as if trained" noise;
    raises AssertionError with every problem, or if the adapter leaves the output unchanged (a
    trivial adapter proves nothing). `run` defaults to the model's output on `model.make_inputs()`."""
    from .harness import perturb
    from .models import output_of

    inputs = model.make_inputs()

    def forward(m: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return output_of(m(**inputs))

    run = run or forward
    outputs: list[torch.Tensor] = []
    problems = both_ways(
        model.build, ours_config, hf_config, lambda m: outputs.append(run(m)) or outputs[-1], workdir,
        prepare=lambda m: perturb(m, scale, seed=1), compare=compare,
    )
    if outputs and torch.allclose(outputs[0], run(model.build())):
        problems.append("Hugging Face's adapter leaves the output unchanged: the comparison would prove nothing")
    assert not problems, "\n".join(problems)


def twin_models(make_base: Callable[[], nn.Module], ours_config: Any, hf_config: Any, seed: int = 1) -> tuple[nn.Module, nn.Module]:
    """(Hugging Face's, ours): the same adapter made by both libraries, in eval mode. Each starts from the
    same seed (a random start drawn the same way is then the same); the libraries draw fresh
    `modules_to_save` copies (a classifier head) differently, so Hugging Face's take ours' values."""
    from ..mapping import get_peft_model

    torch.manual_seed(seed)
    theirs = hf_model(make_base(), hf_config)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = get_peft_model(make_base(), ours_config)
    copies = {k: v for k, v in ours.state_dict().items() if ".modules_to_save." in k}
    with torch.no_grad():
        for key, tensor in theirs.state_dict().items():
            if ".modules_to_save." in key:
                tail = key.split("base_model.", 1)[-1]
                tensor.copy_(next(v for k, v in copies.items() if k.endswith(tail)))
    return theirs.eval(), ours.eval()


def assert_same_seeded_start(
    make_base: Callable[[], nn.Module], ours_config: Any, hf_config: Any, seed: int = 1
) -> None:
    """From the same seed both libraries draw the same random start (`twin_models`): the same state-dict
    keys and bit-identical tensors."""
    theirs, ours = twin_models(make_base, ours_config, hf_config, seed)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:5]
    differ = [key for key in a if not torch.equal(a[key], b[key])]
    assert not differ, f"tensors drawn differently from Hugging Face's: {differ[:5]}"


def assert_merges_like_hf(make_base: Callable[[], nn.Module], theirs: Any, workdir: str | os.PathLike) -> None:
    """Hugging Face PEFT's adapter `theirs`, saved to `workdir` and loaded here, merges (`merge_and_unload`)
    into weights bit-identical to Hugging Face's own merge."""
    from ..peft_model import PeftModel

    theirs.save_pretrained(os.fspath(workdir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_merged = theirs.merge_and_unload()
        ours = PeftModel.from_pretrained(make_base(), os.fspath(workdir)).merge_and_unload()
    hf_params, our_params = dict(hf_merged.named_parameters()), dict(ours.named_parameters())
    assert hf_params.keys() == our_params.keys(), sorted(set(hf_params) ^ set(our_params))[:5]
    differ = [name for name, tensor in hf_params.items() if not torch.equal(tensor, our_params[name])]
    assert not differ, f"merged weights differ from Hugging Face's: {differ[:5]}"


def _compare_exact(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    if actual.shape != expected.shape or not torch.equal(actual, expected):
        diff = (actual.double() - expected.double()).abs().max() if actual.shape == expected.shape else "shape"
        raise AssertionError(f"{what}: output differs (max abs diff {diff})")


def _collect(compare: Callable, actual: torch.Tensor, expected: torch.Tensor, what: str) -> list[str]:
    try:
        compare(actual, expected, what)
    except AssertionError as exc:
        return [str(exc)]
    return []


def missing_fields(ours: Iterable[str], hf_config_cls: type) -> set[str]:
    """Fields of Hugging Face's config class that ours lacks (a config that is HF's field for field has none)."""
    import dataclasses

    return {f.name for f in dataclasses.fields(hf_config_cls)} - set(ours)


def config_differences(ours_cls: type, hf_config_cls: type) -> list[str]:
    """How our config class differs from Hugging Face's: fields either lacks, and defaults that differ
    (`peft_type` / `peft_version` aside). Empty when a user's config means the same in both."""
    from ..config_fields import field_defaults

    def defaults(cls: type) -> dict[str, Any]:
        return {k: v for k, v in field_defaults(cls).items() if k not in ("peft_type", "peft_version")}

    ours, theirs = defaults(ours_cls), defaults(hf_config_cls)
    problems = [f"field {name!r} only in Hugging Face's" for name in sorted(set(theirs) - set(ours))]
    problems += [f"field {name!r} only in ours" for name in sorted(set(ours) - set(theirs))]
    problems += [
        f"default of {name!r}: ours {ours[name]!r}, Hugging Face {theirs[name]!r}"
        for name in sorted(set(ours) & set(theirs))
        if ours[name] != theirs[name]
    ]
    return problems
