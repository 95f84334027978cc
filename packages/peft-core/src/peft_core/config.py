"""`PeftConfig`: the base of every method's config, and `adapter_config.json` reading and writing.

The JSON form matches Hugging Face PEFT's (sorted keys, 2-space indent, no trailing newline,
upper-case `peft_type`) so adapters move between the two libraries in both directions.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import types
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Unpack

from .core_version import core_version
from .errors import AdapterNotFoundError, ConfigError
from .hub import HubCommitOptions
from .peft_types import PeftTypeName
from .serialization import CONFIG_NAME, atomic_write_text


# The Hugging Face PEFT release whose adapter format this core writes. HF reads `peft_version`
# with `packaging.version.Version(value.partition("@")[0])`, so it must start with a plain version.
HF_FORMAT_VERSION = "0.21.2"


class TaskType(str, enum.Enum):
    """Task kinds; they choose the `PeftModelFor...` wrapper (a closed set, like Hugging Face PEFT's)."""

    SEQ_CLS = "SEQ_CLS"
    SEQ_2_SEQ_LM = "SEQ_2_SEQ_LM"
    CAUSAL_LM = "CAUSAL_LM"
    TOKEN_CLS = "TOKEN_CLS"
    QUESTION_ANS = "QUESTION_ANS"
    FEATURE_EXTRACTION = "FEATURE_EXTRACTION"

    def __str__(self) -> str:
        return self.value


_core_version = core_version  # the name other modules of older releases imported


def default_peft_version() -> str:
    return f"{HF_FORMAT_VERSION}@peft-core-{_core_version()}"


_UNSET_VALUES = (None, False, {}, [], (), "")


@dataclass
class PeftConfig:
    """Fields every adapter config has. Method configs subclass it and set `peft_type`'s default.

    Class-level knobs for subclasses:
    - `not_implemented`: field -> the only value this package supports. A loaded config with any
      other value is refused, because silently ignoring it would give different outputs than
      Hugging Face PEFT.
    - `set_fields`: fields Hugging Face PEFT stores as sets; written as sorted lists.
    """

    task_type: str | None = field(default=None, metadata={"help": "Task kind (see TaskType); picks the model wrapper."})
    peft_type: str | None = field(default=None, metadata={"help": "Upper-case method name, e.g. 'LORA'."})
    auto_mapping: dict | None = field(default=None, metadata={"help": "Base model class, for auto-loading."})
    peft_version: str | None = field(default=None, metadata={"help": "Format version that wrote the config."})
    base_model_name_or_path: str | None = field(default=None, metadata={"help": "Base model id or path."})
    revision: str | None = field(default=None, metadata={"help": "Base model revision."})
    inference_mode: bool = field(default=False, metadata={"help": "Freeze the adapter (set on load)."})

    not_implemented: ClassVar[Mapping[str, Any]] = {}
    set_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if isinstance(self.task_type, TaskType):
            self.task_type = self.task_type.value
        if self.task_type is not None and self.task_type not in TaskType._value2member_map_:
            allowed = ", ".join(t.value for t in TaskType)
            raise ConfigError(f"Invalid task_type {self.task_type!r} in {type(self).__name__}; use one of: {allowed}, or None.")
        expected = _declared_peft_type(type(self))
        if self.peft_type is None:
            self.peft_type = expected
        if isinstance(self.peft_type, str):
            self.peft_type = PeftTypeName(self.peft_type)  # also has `.value`, like HF's enum member
        if expected is not None and self.peft_type != expected:
            raise ConfigError(
                f"{type(self).__name__} has peft_type {expected!r}, got {self.peft_type!r}. "
                f"Load the config with PeftConfig.from_pretrained, which picks the class from peft_type."
            )
        if self.peft_version is None:
            self.peft_version = default_peft_version()
        for name in self.set_fields:
            value = getattr(self, name, None)
            if isinstance(value, (list, tuple)):
                setattr(self, name, set(value))
        self._check_common_ranges()
        self._check_numbers()
        self._check_patterns()
        self._refuse_not_implemented()

    # -- validation helpers ---------------------------------------------------------------------
    def _check_numbers(self) -> None:
        """No field holds NaN, an infinity or an integer beyond 64 bits (nested values included): such a
        value is never a valid scale, rank or seed, and would surface later as NaN outputs or a torch error."""
        for f in dataclasses.fields(self):
            problem = _absurd_number(getattr(self, f.name, None), f.name)
            if problem is not None:
                where, value = problem
                raise ConfigError(
                    f"{type(self).__name__}.{where} must be a finite number of reasonable size, got {_short(value)}. "
                    f"Fix the value in the config (adapter_config.json)."
                )

    def _check_patterns(self) -> None:
        """Fields Hugging Face PEFT matches as regular expressions must compile (see `peft_core.patterns`)."""
        from . import patterns
        from .tuners.matching import (
            LAYERS_PATTERN_TEMPLATE,
            MODULES_TO_SAVE_TEMPLATE,
            PATTERN_KEY_TEMPLATE,
        )

        name = type(self).__name__
        for field_name in ("target_modules", "exclude_modules"):
            value = getattr(self, field_name, None)
            if isinstance(value, str):
                patterns.compile_pattern(value, f"{name}.{field_name}")
        layers_pattern = getattr(self, "layers_pattern", None)
        for value in [layers_pattern] if isinstance(layers_pattern, str) else (layers_pattern or []):
            if isinstance(value, str):
                patterns.compile_pattern(value, f"{name}.layers_pattern", LAYERS_PATTERN_TEMPLATE)
        for value in getattr(self, "modules_to_save", None) or []:
            if isinstance(value, str):
                patterns.compile_pattern(value, f"{name}.modules_to_save", MODULES_TO_SAVE_TEMPLATE)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name, None)
            if f.name.endswith("_pattern") and isinstance(value, dict):
                for key in value:
                    if isinstance(key, str):
                        patterns.compile_pattern(key, f"{name}.{f.name}", PATTERN_KEY_TEMPLATE)

    def _check_common_ranges(self) -> None:
        """Checks every method shares, by Hugging Face PEFT's field-naming conventions.

        - a float field named `*dropout` is a probability in [0, 1) (1 would drop everything);
        - the rank `r` is a positive integer; where a config's own default for `r` is 0, 0 is a
          documented sentinel ("size the blocks instead", as in OFT) and only negatives are refused.
        Wrong types are left to the type check and the method's own validation.
        """
        name = type(self).__name__
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name, None)
            if not f.name.endswith("dropout") or not _is_real(value) or not _mentions(hints.get(f.name), float):
                continue
            if not 0 <= value < 1:
                raise ConfigError(
                    f"{name}.{f.name} must be a probability in [0, 1) (a dropout rate can't be negative or reach 1), "
                    f"got {value!r}. Use e.g. 0.05, or 0.0 for no dropout."
                )
        r = getattr(self, "r", None)
        if isinstance(r, int) and not isinstance(r, bool):
            default = next((f.default for f in dataclasses.fields(self) if f.name == "r"), None)
            zero_allowed = default == 0
            if r < 0 or (r == 0 and not zero_allowed):
                need = "a non-negative integer" if zero_allowed else "a positive integer"
                raise ConfigError(f"{name}.r must be {need} (the rank), got {r!r}. Use e.g. r=8.")

    def _refuse_not_implemented(self) -> None:
        for name, supported in self.not_implemented.items():
            value = getattr(self, name, None)
            if value == supported or (value in _UNSET_VALUES and supported in _UNSET_VALUES):
                continue
            raise ConfigError(
                f"{type(self).__name__}.{name}={value!r} is a Hugging Face PEFT option that "
                f"{_owning_distribution(type(self))} does not implement (only {supported!r} is supported). "
                f"Refusing it rather than computing different outputs; remove the field or set it to {supported!r}."
            )

    @property
    def is_prompt_learning(self) -> bool:
        return False

    # -- dict / json ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready: sets become sorted lists, enums their values."""
        out = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out.pop("runtime_config", None)
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write `adapter_config.json` atomically, with the fields as they are set (as Hugging Face
        PEFT's `PeftConfig.save_pretrained` does; `PeftModel.save_pretrained` saves `inference_mode` as true).

        `write_batch=` (a `serialization.WriteBatch`) stages the file instead of renaming it now.
        """
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ConfigError(f"save_pretrained needs a directory, but {save_directory!r} is a file.")
        os.makedirs(save_directory, exist_ok=True)
        data = self.to_saved_dict(auto_mapping_dict=kwargs.get("auto_mapping_dict"), inference_mode=None)
        write_config_file(save_directory, data, kwargs.get("write_batch"))

    def to_saved_dict(
        self, auto_mapping_dict: Mapping[str, Any] | None = None, inference_mode: bool | None = True
    ) -> dict[str, Any]:
        """The JSON object written for this config. `PeftModel.save_pretrained` saves `inference_mode`
        as true (Hugging Face PEFT does); `inference_mode=None` keeps the value as set."""
        data = self.to_dict()
        if inference_mode is not None:
            data["inference_mode"] = inference_mode
        if auto_mapping_dict is not None:
            data["auto_mapping"] = dict(auto_mapping_dict)
        return data

    def push_to_hub(self, repo_id: str, **options: Unpack[HubCommitOptions]) -> Any:
        """Upload `adapter_config.json` alone to Hub repo `repo_id`; returns huggingface_hub's `CommitInfo`.
        `options` say how to commit (`commit_message`, `private`, `token`, `revision`, `create_pr`, ...)."""
        from .hub import push_to_hub

        return push_to_hub(self.save_pretrained, repo_id, what="adapter config", **options)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        subfolder: str | None = None,
        revision: str | None = None,
        **hub_kwargs: Any,
    ) -> PeftConfig:
        """Load `adapter_config.json` from a local folder or a Hub repo; the class comes from `peft_type`."""
        from .hub import resolve_adapter_file

        path = resolve_adapter_file(
            pretrained_model_name_or_path, CONFIG_NAME, subfolder=subfolder, revision=revision, **hub_kwargs
        )
        if path is None:
            where = os.path.join(os.fspath(pretrained_model_name_or_path), subfolder or "")
            raise _missing_config(where)
        return cls.from_json_file_to_config(path)

    @classmethod
    def from_json_file_to_config(cls, path: str) -> PeftConfig:
        data = cls.from_json_file(path)
        config = cls.from_peft_type(_source=path, **data)
        config._loaded_from = (os.fspath(path), data)  # what the weights file's recorded config is checked against
        return config

    @staticmethod
    def from_json_file(path: str | os.PathLike) -> dict[str, Any]:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh, parse_int=_parse_json_int)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{os.fspath(path)} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                f"fix the file or save the adapter again."
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{os.fspath(path)} is not UTF-8 text; it is not an adapter_config.json.") from exc
        except RecursionError:
            raise ConfigError(
                f"{os.fspath(path)} nests JSON arrays/objects too deeply to be an adapter_config.json; "
                f"save the adapter again."
            ) from None
        except IsADirectoryError:
            raise ConfigError(f"{os.fspath(path)} is a folder, not an adapter_config.json file.") from None
        except (ValueError, OverflowError) as exc:
            raise ConfigError(f"{os.fspath(path)} is not a readable adapter_config.json ({exc}).") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{os.fspath(path)} must hold a JSON object, found {type(data).__name__}.")
        if "runtime_config" in data:  # settings for one process, never taken from a file (as in HF PEFT)
            del data["runtime_config"]
            warnings.warn(f"{os.fspath(path)} holds a `runtime_config` entry; it is ignored (runtime settings are "
                          "not saved with an adapter, pass them when loading).")
        return data

    @classmethod
    def from_peft_type(cls, _source: str | None = None, **kwargs: Any) -> PeftConfig:
        """Build the config class registered for `kwargs['peft_type']` (or `cls` when absent)."""
        where = f" in {_source}" if _source else ""
        peft_type = kwargs.get("peft_type")
        if peft_type is None:
            config_cls = cls
            if _declared_peft_type(cls) is None:
                raise ConfigError(f"The config{where} has no 'peft_type'; add e.g. \"peft_type\": \"LORA\".")
        else:
            if not isinstance(peft_type, str):
                raise ConfigError(f"'peft_type'{where} must be a string such as \"LORA\", got {peft_type!r}.")
            from .registry import get_peft_method

            config_cls = get_peft_method(peft_type).config_cls
            if not issubclass(config_cls, cls):
                raise ConfigError(
                    f"The config{where} is a {config_cls.__name__} (peft_type {peft_type!r}), not a {cls.__name__}; "
                    f"load it with PeftConfig.from_pretrained or {config_cls.__name__}.from_pretrained."
                )
        return config_cls.from_dict(kwargs, _source=_source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], _source: str | None = None) -> PeftConfig:
        """Build this class from a dict: unknown keys dropped with a warning, field types checked."""
        where = f" in {_source}" if _source else ""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = dict(data)
        if "runtime_config" in kwargs and "runtime_config" not in names:
            kwargs.pop("runtime_config")
        unknown = sorted(k for k in kwargs if k not in names)
        if _source and "peft_type" not in kwargs and (unknown or not kwargs):
            # Hugging Face PEFT refuses such a file too (it needs at least `peft_type` then)
            raise ConfigError(
                f"{_source} is not an adapter config: it has no 'peft_type'"
                + (f" and fields {cls.__name__} does not know ({unknown[:5]})" if unknown else " and no field at all")
                + ". Point to the folder that save_pretrained wrote (its adapter_config.json names the method, e.g. "
                "\"peft_type\": \"LORA\")."
            )
        if unknown:
            warnings.warn(
                f"Unexpected keyword arguments {unknown} for class {cls.__name__}, these are ignored. They are fields{where}, "
                f"probably written by a newer version; upgrade {_owning_distribution(cls)} if the adapter needs them.",
                UserWarning,
                stacklevel=3,
            )
            for k in unknown:
                kwargs.pop(k)
        for key, value in kwargs.items():
            problem = _absurd_number(value, key)
            if problem is not None:
                raise ConfigError(
                    f"{cls.__name__}.{problem[0]}{where} must be a finite number of reasonable size, got "
                    f"{_short(problem[1])}. Fix the value in adapter_config.json."
                )
        check_field_types(cls, kwargs, where)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if not _source or _source in str(exc):
                raise
            raise type(exc)(f"{exc} (in {_source})") from exc  # say which file
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Invalid {cls.__name__}{where}: {exc}") from exc

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        return f"{type(self).__name__}({fields})"


def write_config_file(directory: str, data: Mapping[str, Any], batch: Any = None) -> None:
    """Write `data` as `<directory>/adapter_config.json` in Hugging Face PEFT's form (staged in `batch` if given)."""
    atomic_write_text(os.path.join(directory, CONFIG_NAME), json.dumps(data, indent=2, sort_keys=True), batch)


def loaded_config_source(config: PeftConfig) -> tuple[str, dict[str, Any]] | None:
    """(path, JSON object) of the file `config` was read from, or None for a config built in code."""
    return config.__dict__.get("_loaded_from")


_INT_LIMIT = 2**64  # torch sizes are int64 and generator seeds uint64


def _absurd_number(value: Any, where: str, depth: int = 0) -> tuple[str, Any] | None:
    """(path, value) of the first NaN / infinite float or oversized integer in `value`, else None."""
    if isinstance(value, OversizedInteger):
        return (where, value)
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    if isinstance(value, int):
        return None if -_INT_LIMIT < value < _INT_LIMIT else (where, value)
    if depth > 20:
        return None
    if isinstance(value, dict):
        items = [(f"{where}[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for path, item in items:
        found = _absurd_number(item, path, depth + 1)
        if found is not None:
            return found
    return None


class OversizedInteger(str):
    """An integer literal of a JSON file too long to be any size or seed (kept as its digits)."""


def _parse_json_int(text: str) -> Any:
    return OversizedInteger(text) if len(text) > 40 else int(text)


def _short(value: Any) -> str:
    if isinstance(value, OversizedInteger):
        return f"an integer with {len(value.lstrip('-'))} digits"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT_LIMIT:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def _missing_config(where: str) -> AdapterNotFoundError:
    return AdapterNotFoundError(
        f"No {CONFIG_NAME} found in {where!r}. Point to the folder that save_pretrained wrote "
        f"(non-default adapters live in a sub-folder named after the adapter: use subfolder=...)."
    )


def _declared_peft_type(cls: type) -> str | None:
    for f in dataclasses.fields(cls):
        if f.name == "peft_type":
            return f.default if isinstance(f.default, str) else None
    return None


def _owning_distribution(cls: type) -> str:
    top = cls.__module__.split(".")[0]
    return top.replace("_", "-")


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=lambda v: (str(type(v)), v))
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    return value


# -- field type checking --------------------------------------------------------------------------
def check_field_types(cls: type, values: Mapping[str, Any], where: str = "") -> None:
    """Raise `ConfigError` when a value does not fit its field's annotation (JSON-level types)."""
    hints = _type_hints(cls)
    for name, value in values.items():
        tp = hints.get(name)
        if tp is None or _matches(value, tp):
            continue
        raise ConfigError(
            f"{cls.__name__}.{name}{where} has the wrong type: expected {_describe(tp)}, got {value!r} "
            f"({type(value).__name__}). Fix the value in adapter_config.json."
        )


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    hints = _HINT_CACHE.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable annotation in a third-party config: skip checking
            hints = {}
        _HINT_CACHE[cls] = hints
    return hints


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any or tp is object:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, typing.Sequence) or tp in (list, tuple, set, frozenset):
        if not isinstance(value, (list, tuple, set, frozenset)):
            return False
        if not args or (origin is tuple and len(args) == 2 and args[1] is Ellipsis and _matches_all(value, args[0])):
            return True
        if origin is tuple and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return _matches_all(value, args[0])
    if origin in (dict, typing.Mapping) or tp in (dict,):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(_matches(v, args[1]) for v in value.values())
        return True
    if isinstance(tp, type):
        if isinstance(value, tp):
            return True
        if issubclass(tp, enum.Enum):
            return any(value is m or (type(value) is type(m.value) and value == m.value) for m in tp)  # no hashing: lists are fine
        if dataclasses.is_dataclass(tp):
            return isinstance(value, dict)
        return False
    return True  # annotations we don't understand are not checked


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mentions(tp: Any, wanted: type) -> bool:
    """Whether annotation `tp` is `wanted` or a union containing it."""
    if tp is wanted:
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and wanted in typing.get_args(tp)


def _matches_all(values: Any, tp: Any) -> bool:
    return all(_matches(v, tp) for v in values)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp)
