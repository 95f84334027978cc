"""Regular expressions from adapter configs, matched with a time limit.

A config file is untrusted input, and Hugging Face PEFT matches several of its fields as regular
expressions (`target_modules` / `exclude_modules` given as a string, `rank_pattern` keys,
`layers_pattern`, `modules_to_save` entries). With Python's `re`, a pattern such as `(\\w+\\.?)+!`
backtracks exponentially and hangs loading. These helpers compile the same patterns with the
`regex` package (its default mode follows `re`'s syntax and semantics, lookarounds included) and
match with a timeout; a pattern that does not compile or that runs out of time is a `ConfigError`
naming the field.
"""

from __future__ import annotations

import functools
from typing import Any

from .errors import ConfigError

# Matching one pattern against one module name; real patterns take microseconds.
MATCH_TIMEOUT_S = 1.0


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


def compile_pattern(pattern: str, field: str, template: str = "{}") -> Any:
    """Compile `pattern` put in place of the `{}` of `template` (HF's wrapping of the field's value),
    or raise ConfigError."""
    import regex

    if not isinstance(pattern, str):
        raise ConfigError(f"{field} must be a string (a regular expression), got {pattern!r}.")
    try:
        return _compile(template.replace("{}", pattern, 1))
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise ConfigError(
            f"{field}={pattern!r} is not a valid regex ({getattr(exc, 'msg', None) or exc}). Fix the pattern (escape characters "
            f"such as '.' '(' '[' that should match literally)."
        ) from None


def _run(method: str, pattern: str, text: str, field: str, template: str) -> Any:
    compiled = compile_pattern(pattern, field, template)
    try:
        return getattr(compiled, method)(text, timeout=MATCH_TIMEOUT_S)
    except TimeoutError:
        raise ConfigError(
            f"{field}={pattern!r}: matching it against the module name {text!r} took more than {MATCH_TIMEOUT_S:g} s, "
            f"so the pattern backtracks exponentially (nested repetition such as '(a+)+'). Refusing it rather than "
            f"hanging; simplify the pattern, or list the module names instead."
        ) from None


def fullmatch(pattern: str, text: str, field: str, template: str = "{}") -> bool:
    """`re.fullmatch(<pattern in template>, text) is not None`, with a time limit."""
    return _run("fullmatch", pattern, text, field, template) is not None


def match(pattern: str, text: str, field: str, template: str = "{}") -> Any:
    """`re.match(<pattern in template>, text)`, with a time limit."""
    return _run("match", pattern, text, field, template)


def field_label(config: Any, name: str) -> str:
    """`LoraConfig.target_modules (in /path/adapter_config.json)`: a field, and the file it came from."""
    label = f"{type(config).__name__}.{name}"
    source = getattr(config, "__dict__", {}).get("_loaded_from")
    return f"{label} (in {source[0]})" if source else label
