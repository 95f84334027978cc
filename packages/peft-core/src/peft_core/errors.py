"""Exception types. Each message says what was wrong, where, and how to fix it."""

from __future__ import annotations


class PeftError(Exception):
    """Base class of every error raised on purpose by peft-core and method packages."""


class RegistrationError(PeftError, ValueError):
    """A method package tried to register something inconsistent or conflicting."""


class IncompatibleMethodError(RegistrationError):
    """A method package was built for a plugin API version this peft-core does not implement."""


class UnknownPeftTypeError(PeftError, KeyError):
    """No installed package provides the requested peft type."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigError(PeftError, ValueError):
    """An adapter config is malformed, has a wrong field type, or asks for something not implemented."""


class AdapterLoadError(PeftError, ValueError):
    """Adapter weights could not be read or do not fit the model."""


class AdapterNotFoundError(PeftError, FileNotFoundError):
    """An adapter folder or one of its files does not exist."""


class AdapterNameError(PeftError, ValueError):
    """An adapter name would break parameter keys, folder names or module attributes."""


class PeftWarning(UserWarning):
    """Base class of warnings issued on purpose by peft-core and method packages."""


class UnsupportedLayerError(PeftError, ValueError):
    """A targeted module is of a type the method has no adapter layer for (e.g. a quantized layer
    whose library no installed dispatcher handles)."""


class InconsistentAdapterError(AdapterLoadError):
    """An adapter folder mixes files of two saves (e.g. a save killed between two renames)."""


class AdapterStateError(PeftError, ValueError):
    """An operation would leave the model's adapters in an inconsistent state (e.g. deleting a merged adapter)."""


class UnsupportedOperationError(PeftError, ValueError, NotImplementedError):
    """The model or method can't do what was asked (merge learned virtual tokens, run a mixed-adapter batch,
    hotswap a method that declares no hotswap support, weighted adapters in a mixed-method model ...).

    Raised before anything changes, so the model is left as it was."""


class HotswapError(PeftError, ValueError, RuntimeError):
    """An adapter can't replace another in place (different method or settings, other targets, a larger
    rank than the model was prepared for, a merged adapter)."""


def unsupported_target(key: str, module: object, method: str, supported: str) -> ConfigError:
    """The error a method raises for a targeted module it can't adapt: which module, which types it takes."""
    return ConfigError(
        f"Target module {key!r} ({type(module).__name__}) is not supported by {method}; supported: {supported}. "
        f"Adjust target_modules (or exclude_modules)."
    )
