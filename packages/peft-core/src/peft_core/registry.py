"""The method registry: an open set of peft types, each added by one `register_peft_method` call.

There is no central enum. A method package registers itself when imported; a method that is not
registered yet is imported through its `peft.methods` entry point (see `discovery`).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

from ._plugin_api import PLUGIN_API_VERSION
from .errors import IncompatibleMethodError, PeftWarning, RegistrationError
from .peft_types import PeftTypeName

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PeftMethod:
    """What a method package registered."""

    name: str
    config_cls: type
    model_cls: type
    prefix: str
    is_mixed_compatible: bool = False
    shares_prefix_with: str | None = None
    default_target_modules: Mapping[str, tuple[str, ...] | str] = field(default_factory=dict)
    plugin_api: str | None = None

    @property
    def peft_type(self) -> str:
        return self.name.upper()

    @property
    def module(self) -> str:
        """The import package that registered the method (e.g. 'peft_lora')."""
        return self.config_cls.__module__.split(".")[0]

    def describe(self) -> str:
        return f"{self.name!r} (config {_qualname(self.config_cls)}, model {_qualname(self.model_cls)})"


_REGISTRY: dict[str, PeftMethod] = {}
# Guards changes to the registry only; never held while a method package is imported (see discovery).
LOCK = threading.RLock()


#: Class attributes of a method's model class that `register_peft_method` reads when the keyword of the same
#: name is not passed, so that each fact about a method is stated once, where its code is.
MODEL_CLASS_FACTS = ("config_cls", "prefix", "default_target_modules", "is_mixed_compatible", "shares_prefix_with")


def register_peft_method(
    name: str,
    model_cls: type | None = None,
    *,
    config_cls: type | None = None,
    prefix: str | None = None,
    is_mixed_compatible: bool | None = None,
    shares_prefix_with: str | None = None,
    default_target_modules: Mapping[str, Sequence[str] | str] | None = None,
    plugin_api: str | None = None,
) -> PeftMethod:
    """Register a method. Called once from the method package's `__init__`:
    `register_peft_method("vera", VeraModel, plugin_api=">=1,<2")`.

    Args:
        name: lower-case method name; its upper-case form is the `peft_type` in adapter_config.json.
        model_cls: the method's tuner class (a `BaseTuner` subclass). Every keyword below except `plugin_api`
            may instead be a class attribute of the same name on it (`MODEL_CLASS_FACTS`); a keyword that
            contradicts the class attribute is an error, so the two ways never disagree silently.
        config_cls: the method's `PeftConfig` subclass; its `peft_type` default must be `name.upper()`.
        prefix: start of the method's parameter names (the model class's `prefix`, which it must equal).
        is_mixed_compatible: whether the method's adapters can be combined with other methods' in one
            `PeftMixedModel` (`get_peft_model(..., mixed=True)`), default False. Declaring it promises that the
            tuner wraps a target that is already another method's layer (it asks `BaseTuner.wrapped_base` for
            the module to dispatch on) and that its layers compute on top of what they wrap (through
            `self.base_layer(...)`); the mixed model refuses other methods.
        shares_prefix_with: another method whose parameter naming this one reuses on purpose
            (AdaLoRA saves LoRA's `lora_A`/`lora_B` keys). Without it a taken prefix is a conflict.
        default_target_modules: model_type -> target module names (or one regex string) used when
            `target_modules` is unset.
        plugin_api: the range of peft-core plugin API versions the package supports, e.g. ">=1,<2". Leaving it
            out registers the method but warns (`PeftWarning`).

    The keyword form of earlier releases (`name=..., config_cls=..., model_cls=..., prefix=...`) still works.
    Registering the same classes again is a no-op, so re-importing a package is harmless. A name taken by
    other classes, a prefix equal to another method's (without `shares_prefix_with`) or starting with one
    (`prefixes_conflict`), a missing or contradicting fact and wrongly typed arguments raise `RegistrationError`
    before anything is registered.
    """
    where = f"registering {name!r} from {_module_of(model_cls if config_cls is None else config_cls)}"
    if not isinstance(model_cls, type):
        raise RegistrationError(
            f"model_cls must be a class ({where}), got {model_cls!r}; e.g. register_peft_method({name!r}, MyModel)."
        )
    _check_argument_types(where, prefix, is_mixed_compatible, shares_prefix_with, default_target_modules)
    config_cls = _model_class_fact(model_cls, "config_cls", config_cls, where)
    if not _is_peft_config_class(config_cls):
        raise RegistrationError(
            f"config_cls must be a PeftConfig subclass ({where}), got {config_cls!r}. Set `config_cls = MyConfig` "
            f"on {_qualname(model_cls)} (or pass config_cls=)."
        )
    where = f"registering {name!r} from {_module_of(config_cls)}"
    _check_plugin_api(name, plugin_api, config_cls)
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith("_"):
        raise RegistrationError(
            f"Invalid method name {name!r} ({where}): use lower-case letters, digits and '_', starting with a "
            f"letter and not ending in '_', e.g. 'lora' or 'ln_tuning'."
        )
    is_mixed_compatible = _model_class_fact(model_cls, "is_mixed_compatible", is_mixed_compatible, where)
    shares_prefix_with = _model_class_fact(model_cls, "shares_prefix_with", shares_prefix_with, where)
    default_target_modules = _model_class_fact(model_cls, "default_target_modules", default_target_modules, where)
    _check_argument_types(where, None, is_mixed_compatible, shares_prefix_with, default_target_modules)
    declared = next((f.default for f in dataclasses.fields(config_cls) if f.name == "peft_type"), None)
    if declared != name.upper():
        raise RegistrationError(
            f"{_qualname(config_cls)} declares peft_type {declared!r}, but the method is registered as {name!r} "
            f"({where}). Give the config field `peft_type: str = {name.upper()!r}`."
        )
    model_prefix = getattr(model_cls, "prefix", None) or None
    if prefix is not None and model_prefix is not None and model_prefix != prefix:
        raise RegistrationError(
            f"{_qualname(model_cls)}.prefix is {model_prefix!r} but {name!r} registers prefix {prefix!r} ({where}). "
            f"State the prefix once: `prefix = ...` on the model class, and leave out register_peft_method's prefix."
        )
    prefix = prefix or model_prefix
    if prefix is None or model_prefix is None:
        raise RegistrationError(
            f"{_qualname(model_cls)} has no parameter prefix ({where}). Set `prefix = {(prefix or name + '_')!r}` on "
            f"the model class: its layers' parameter names start with it."
        )
    targets = {str(k): v if isinstance(v, str) else tuple(v) for k, v in (default_target_modules or {}).items()}
    method = PeftMethod(
        name=name,
        config_cls=config_cls,
        model_cls=model_cls,
        prefix=prefix,
        is_mixed_compatible=bool(is_mixed_compatible),
        shares_prefix_with=shares_prefix_with,
        default_target_modules=targets,
        plugin_api=plugin_api,
    )
    with LOCK:
        existing = _REGISTRY.get(name)
        if existing is not None:
            if _same_classes(existing, method):
                return existing
            raise RegistrationError(
                f"Method name {name!r} is already registered by {_module_of(existing.config_cls)} "
                f"({existing.describe()}); {_module_of(config_cls)} tried to register {method.describe()}. "
                f"Uninstall one of the two packages or give the new method another name."
            )
        _check_prefix(method)
        _check_prefix_overlap(method)
        _REGISTRY[name] = method
    if plugin_api is None:
        warnings.warn(
            f"{_module_of(config_cls)} registers the method {name!r} without plugin_api: nothing stops a future "
            f"peft-core with an incompatible plugin API from loading it. Pass the range of plugin API versions it was "
            f"written for, e.g. register_peft_method(..., plugin_api='>={PLUGIN_API_VERSION},<{PLUGIN_API_VERSION + 1}').",
            PeftWarning,
            stacklevel=2,
        )
    return method


def _model_class_fact(model_cls: type, attr: str, passed: object, where: str) -> object:
    """The keyword `attr` or, left out, the model class's attribute of that name; both given must agree."""
    declared = getattr(model_cls, attr, None)
    if passed is None or declared is None:
        return declared if passed is None else passed
    if _comparable(passed) != _comparable(declared):
        raise RegistrationError(
            f"register_peft_method({attr}={_describe(passed)}) contradicts {_qualname(model_cls)}.{attr} = "
            f"{_describe(declared)} ({where}). State it once: keep the class attribute and leave out the keyword."
        )
    return declared


def _comparable(value: object) -> object:
    """Target tables compare by content: a list and a tuple of the same names state the same fact."""
    if isinstance(value, Mapping):
        return {k: v if isinstance(v, str) else tuple(v) for k, v in value.items()}
    return value


def _describe(value: object) -> str:
    return _qualname(value) if isinstance(value, type) else repr(value)


def _is_peft_config_class(cls: object) -> bool:
    """`issubclass(cls, PeftConfig)`, by name: the registry does not import the config module (which looks
    methods up here when it loads a config), so the two stay free of an import cycle."""
    return isinstance(cls, type) and any(
        base.__name__ == "PeftConfig" and base.__module__ == "peft_core.config" for base in cls.__mro__
    )


def _check_argument_types(
    where: str,
    prefix: object,
    is_mixed_compatible: object,
    shares_prefix_with: object,
    default_target_modules: object,
) -> None:
    """Wrong types would otherwise surface much later (a prefix that matches nothing, a truthy string as a flag)."""
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise RegistrationError(f"prefix must be a non-empty string ({where}), got {prefix!r}.")
    if is_mixed_compatible is not None and not isinstance(is_mixed_compatible, bool):
        raise RegistrationError(f"is_mixed_compatible must be True or False ({where}), got {is_mixed_compatible!r}.")
    if shares_prefix_with is not None and not isinstance(shares_prefix_with, str):
        raise RegistrationError(
            f"shares_prefix_with must be the name of a registered method ({where}), got {shares_prefix_with!r}."
        )
    if default_target_modules is None:
        return
    if not isinstance(default_target_modules, Mapping):
        raise RegistrationError(
            f"default_target_modules must map model_type to module names ({where}), got "
            f"{type(default_target_modules).__name__}; e.g. {{'llama': ('q_proj', 'v_proj')}}."
        )
    for model_type, targets in default_target_modules.items():
        names = [targets] if isinstance(targets, str) else targets
        if not isinstance(model_type, str) or not isinstance(names, (list, tuple)) or not all(
            isinstance(n, str) and n for n in names
        ):
            raise RegistrationError(
                f"default_target_modules[{model_type!r}] must be module names or one regex string ({where}), got "
                f"{targets!r}."
            )


def prefixes_conflict(prefix: str, other: str) -> bool:
    """Whether two methods' parameter prefixes could claim the same parameter: one starts with the other
    (`lora_` and `lora_x_`: `lora_x_A` starts with both). A prefix inside another (`lora_` in `delora_`) is
    fine, as in Hugging Face PEFT."""
    return prefix.startswith(other) or other.startswith(prefix)


def _check_prefix(method: PeftMethod) -> None:
    owner = next((m for m in _REGISTRY.values() if m.prefix == method.prefix), None)
    if method.shares_prefix_with is not None:
        shared = _REGISTRY.get(method.shares_prefix_with)
        if shared is None:
            raise RegistrationError(
                f"{method.name!r} ({_module_of(method.config_cls)}) declares shares_prefix_with="
                f"{method.shares_prefix_with!r}, but that method is not registered. Import it first "
                f"(declare its package as a dependency and import it in your __init__)."
            )
        if shared.prefix != method.prefix:
            raise RegistrationError(
                f"{method.name!r} declares it shares {shared.name!r}'s prefix, but its prefix {method.prefix!r} "
                f"differs from {shared.prefix!r}. Drop shares_prefix_with or use prefix={shared.prefix!r}."
            )
        if owner is not None and owner.name != shared.name and owner.shares_prefix_with != shared.name:
            raise RegistrationError(
                f"Prefix {method.prefix!r} is used by {owner.name!r} ({_module_of(owner.config_cls)})."
            )
        return
    if owner is not None:
        raise RegistrationError(
            f"Prefix {method.prefix!r} of {method.name!r} ({_module_of(method.config_cls)}) is already used by "
            f"{owner.name!r} ({_module_of(owner.config_cls)}). Choose another prefix, or pass "
            f"shares_prefix_with={owner.name!r} if the method deliberately reuses {owner.name!r}'s parameter names."
        )


def _check_prefix_overlap(method: PeftMethod) -> None:
    """Identical prefixes are `_check_prefix`'s business; here, one that starts with another is refused."""
    for other in _REGISTRY.values():
        if other.prefix != method.prefix and prefixes_conflict(method.prefix, other.prefix):
            longer, shorter = sorted((method.prefix, other.prefix), key=len, reverse=True)
            raise RegistrationError(
                f"Prefix {method.prefix!r} of {method.name!r} ({_module_of(method.config_cls)}) overlaps prefix "
                f"{other.prefix!r} of {other.name!r} ({_module_of(other.config_cls)}): {longer!r} starts with "
                f"{shorter!r}, so a parameter named {longer + 'A'!r} would belong to both. Choose a prefix that "
                f"neither starts with nor begins another method's."
            )


_SIMPLE_CLAUSE_RE = re.compile(r"\s*(>=|<=|==|!=|<|>)\s*(\d+)\s*")
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


def _simple_range_contains(plugin_api: str, version: int) -> bool | None:
    """`version in SpecifierSet(plugin_api)` for ranges of whole numbers such as '>=1,<2' (what
    every package passes), without importing `packaging` (70 ms of `import peft_lora`); None for
    anything else, which `packaging` then decides."""
    result = True
    for clause in plugin_api.split(","):
        match = _SIMPLE_CLAUSE_RE.fullmatch(clause)
        if match is None:
            return None
        result = result and _COMPARE[match.group(1)](version, int(match.group(2)))
    return result


def _check_plugin_api(name: str, plugin_api: str | None, config_cls: type) -> None:
    if plugin_api is None:
        return
    contained = _simple_range_contains(plugin_api, PLUGIN_API_VERSION) if isinstance(plugin_api, str) else None
    if contained is None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            spec = SpecifierSet(plugin_api)
        except InvalidSpecifier as exc:
            raise RegistrationError(
                f"{name!r} ({_module_of(config_cls)}) passes plugin_api={plugin_api!r}, which is not a version "
                f"range; write e.g. '>=1,<2'."
            ) from exc
        contained = str(PLUGIN_API_VERSION) in spec
    if not contained:
        from .core_version import core_version as _core_version

        raise IncompatibleMethodError(
            f"{_module_of(config_cls)} (method {name!r}) supports peft-core plugin API {plugin_api}, but the "
            f"installed peft-core {_core_version()} implements plugin API {PLUGIN_API_VERSION}. Upgrade "
            f"{_distribution_hint(config_cls)} to a release built for plugin API {PLUGIN_API_VERSION}, or install "
            f"a peft-core whose plugin API is in {plugin_api}."
        )


def _same_classes(a: PeftMethod, b: PeftMethod) -> bool:
    # Compare by qualified name too: importlib.reload creates new class objects for the same code.
    return (
        _qualname(a.config_cls) == _qualname(b.config_cls)
        and _qualname(a.model_cls) == _qualname(b.model_cls)
        and a.prefix == b.prefix
    )


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_of(cls: object) -> str:
    return f"module {getattr(cls, '__module__', None)!r}"


def _distribution_hint(cls: type) -> str:
    return cls.__module__.split(".")[0].replace("_", "-")


def get_peft_method(name_or_peft_type: str) -> PeftMethod:
    """The registered method for `'lora'` or `'LORA'`, importing its package through entry points if needed."""
    key = name_or_peft_type.lower() if isinstance(name_or_peft_type, str) else name_or_peft_type
    method = _REGISTRY.get(key)
    if method is not None:
        return method
    from .discovery import load_method

    return load_method(key)


def registered_methods() -> dict[str, PeftMethod]:
    """A snapshot of what is registered now (not what is installed: see `installed_methods`)."""
    with LOCK:
        return dict(_REGISTRY)


def unregister_peft_method(name: str) -> None:
    """Remove a method (for tests and plugin reloading)."""
    with LOCK:
        _REGISTRY.pop(name, None)


def method_for_config(config: object) -> PeftMethod:
    peft_type = getattr(config, "peft_type", None)
    if not isinstance(peft_type, str):
        raise RegistrationError(f"{type(config).__name__} has no peft_type; it is not a PeftConfig.")
    return get_peft_method(peft_type)


class PeftTypeLookup:
    """String-valued lookup of installed methods' peft types, shaped like Hugging Face PEFT's `PeftType` enum:
    `PeftType.LORA`, `PeftType("LORA")`, `PeftType["LORA"]`, `"LORA" in PeftType`, iteration. Each value
    is a `PeftTypeName` (equal to the plain string, with `.value` / `.name`). Not a closed list: any
    installed method package adds its type. `known` names are valid even when no package provides
    them (a program may compare a config's type with a method it did not install).
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = frozenset(str(k).upper() for k in known)

    def _lookup(self, name: str) -> PeftTypeName:
        if name.upper() in self._known:
            return PeftTypeName(name)
        try:
            return PeftTypeName(get_peft_method(name).peft_type)
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def __getattr__(self, attr: str) -> PeftTypeName:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return self._lookup(attr)

    def __call__(self, value: str) -> PeftTypeName:
        try:
            return self._lookup(str(value))
        except AttributeError as exc:
            raise ValueError(f"{value!r} is not a valid PeftType: {exc}") from None

    def __getitem__(self, name: str) -> PeftTypeName:
        try:
            return self._lookup(str(name))
        except AttributeError as exc:
            raise KeyError(name) from exc

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            self._lookup(value)
        except AttributeError:
            return False
        return True

    def __iter__(self) -> Iterator[PeftTypeName]:
        names = self._known | {m.peft_type for m in registered_methods().values()}
        return iter(sorted(PeftTypeName(n) for n in names))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"PeftType({', '.join(self)})"


PeftType = PeftTypeLookup()
