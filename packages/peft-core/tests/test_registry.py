"""Point 1: the registry (open set of peft types, validation naming both sides of a conflict)."""

from __future__ import annotations

import dataclasses

import pytest

import peft_core
from peft_core import BaseTuner, PeftConfig, PeftType, RegistrationError, register_peft_method
from peft_core.errors import IncompatibleMethodError
from peft_core.registry import get_peft_method, registered_methods, unregister_peft_method


def make_method(name: str, prefix: str | None = None):
    """A fresh config/model class pair for `name` (peft_type NAME, model prefix `prefix`)."""
    cfg = dataclasses.make_dataclass(
        f"{name.title()}Config", [("peft_type", str, dataclasses.field(default=name.upper()))], bases=(PeftConfig,)
    )
    model = type(f"{name.title()}Model", (BaseTuner,), {"prefix": prefix if prefix is not None else f"{name}_"})
    return cfg, model


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for n in names:
        unregister_peft_method(n)


def test_register_and_lookup_by_name_or_type(cleanup):
    cfg, model = make_method("alpha")
    cleanup.append("alpha")
    method = register_peft_method(name="alpha", config_cls=cfg, model_cls=model)
    assert get_peft_method("alpha") is method
    assert get_peft_method("ALPHA") is method
    assert method.peft_type == "ALPHA" and method.prefix == "alpha_"
    assert PeftType.ALPHA == "ALPHA"
    assert "ALPHA" in list(PeftType)


def test_peft_types_are_an_open_set():
    # No central enum: there is nothing in core to edit, the toy method comes from the tests.
    assert "toy" in registered_methods()
    assert not hasattr(peft_core, "PEFT_TYPE_TO_CONFIG_MAPPING")


def test_reregistering_the_same_classes_is_a_no_op(cleanup):
    cfg, model = make_method("beta")
    cleanup.append("beta")
    first = register_peft_method(name="beta", config_cls=cfg, model_cls=model)
    assert register_peft_method(name="beta", config_cls=cfg, model_cls=model) is first


def test_duplicate_name_names_both_modules(cleanup):
    cfg, model = make_method("gamma")
    cleanup.append("gamma")
    register_peft_method(name="gamma", config_cls=cfg, model_cls=model)
    other_cfg, other_model = make_method("gamma")
    other_cfg.__module__ = "peft_other.config"
    other_cfg.__qualname__ = "OtherGammaConfig"
    with pytest.raises(RegistrationError) as err:
        register_peft_method(name="gamma", config_cls=other_cfg, model_cls=other_model)
    msg = str(err.value)
    assert "already registered" in msg and "peft_other.config" in msg and __name__ in msg


@pytest.mark.parametrize("bad", ["Lora", "lora_", "9lora", "lo-ra", ""])
def test_invalid_names(bad):
    cfg, model = make_method("delta")
    with pytest.raises(RegistrationError, match="Invalid method name"):
        register_peft_method(name=bad, config_cls=cfg, model_cls=model)


def test_prefix_must_agree_with_model_class():
    cfg, model = make_method("eps", prefix="other_")
    with pytest.raises(RegistrationError, match="prefix is 'other_'"):
        register_peft_method(name="eps", config_cls=cfg, model_cls=model)


def test_config_peft_type_must_match_name():
    cfg, model = make_method("zeta")
    with pytest.raises(RegistrationError, match="declares peft_type 'ZETA'"):
        register_peft_method(name="zeta2", config_cls=cfg, model_cls=type("Z2", (BaseTuner,), {"prefix": "zeta2_"}))


def test_prefix_conflict_needs_a_declaration(cleanup):
    base_cfg, base_model = make_method("eta")
    cleanup.extend(["eta", "eta_ada"])
    register_peft_method(name="eta", config_cls=base_cfg, model_cls=base_model)
    cfg, model = make_method("eta_ada", prefix="eta_")
    with pytest.raises(RegistrationError) as err:
        register_peft_method(name="eta_ada", config_cls=cfg, model_cls=model, prefix="eta_")
    assert "already used by 'eta'" in str(err.value) and "shares_prefix_with='eta'" in str(err.value)
    method = register_peft_method(name="eta_ada", config_cls=cfg, model_cls=model, prefix="eta_", shares_prefix_with="eta")
    assert method.shares_prefix_with == "eta"


def test_shares_prefix_with_an_unregistered_method_is_refused():
    cfg, model = make_method("theta", prefix="nobody_")
    with pytest.raises(RegistrationError, match="not registered"):
        register_peft_method(name="theta", config_cls=cfg, model_cls=model, prefix="nobody_", shares_prefix_with="nobody")


def test_prefixes_containing_each_other_are_distinct(cleanup):
    # 'toy_' sits inside 'xtoy_': different prefixes, so no conflict.
    cfg, model = make_method("xtoy")
    cleanup.append("xtoy")
    register_peft_method(name="xtoy", config_cls=cfg, model_cls=model)


def test_incompatible_plugin_api_names_both_versions():
    cfg, model = make_method("iota")
    with pytest.raises(IncompatibleMethodError) as err:
        register_peft_method(name="iota", config_cls=cfg, model_cls=model, plugin_api=">=7,<8")
    msg = str(err.value)
    assert ">=7,<8" in msg and f"plugin API {peft_core.PLUGIN_API_VERSION}" in msg and "Upgrade" in msg
    assert "iota" not in registered_methods()


def test_bad_plugin_api_range():
    cfg, model = make_method("kappa")
    with pytest.raises(RegistrationError, match="not a version range"):
        register_peft_method(name="kappa", config_cls=cfg, model_cls=model, plugin_api="one")
