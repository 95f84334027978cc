"""Point 1: the registry (open set of peft types, validation naming both sides of a conflict)."""

from __future__ import annotations

import dataclasses

import pytest

import peft_core
from peft_core import BaseTuner, PeftConfig, PeftType, RegistrationError, register_peft_method
from peft_core.errors import IncompatibleMethodError, PeftWarning
from peft_core.registry import get_peft_method, registered_methods, unregister_peft_method

# Most tests here register without plugin_api on purpose (it is optional); its warning has a test of its own.
pytestmark = pytest.mark.filterwarnings("ignore:.*without plugin_api:UserWarning")


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
    with pytest.raises(RegistrationError, match="prefix is 'other_'.*State the prefix once"):
        register_peft_method(name="eps", config_cls=cfg, model_cls=model, prefix="eps_")
    assert "eps" not in registered_methods()


def test_the_model_class_prefix_is_the_registered_one(cleanup):
    # Not `name + "_"`: the keyword form without prefix= takes the model's, as the short form does.
    cfg, model = make_method("rho", prefix="rho_lambda_")
    cleanup.append("rho")
    assert register_peft_method(name="rho", config_cls=cfg, model_cls=model, plugin_api=">=1,<2").prefix == "rho_lambda_"


def test_a_model_class_without_prefix_is_refused():
    cfg, _ = make_method("sigma")
    with pytest.raises(RegistrationError, match=r"SigmaModel has no parameter prefix.*Set `prefix = 'sigma_'`"):
        register_peft_method("sigma", type("SigmaModel", (BaseTuner,), {"config_cls": cfg}), plugin_api=">=1,<2")
    assert "sigma" not in registered_methods()


def short_form_model(name: str, **facts):
    """A model class that states the registration facts itself (the short form's input)."""
    cfg, model = make_method(name)
    return type(model.__name__, (model,), {"config_cls": cfg, **facts})


def test_short_form_reads_the_facts_from_the_model_class(cleanup):
    cleanup.extend(["tau_base", "tau"])
    base = register_peft_method("tau_base", short_form_model("tau_base"), plugin_api=">=1,<2")
    targets = {"llama": ["q_proj", "v_proj"], "gpt2": "c_attn"}
    model = short_form_model(
        "tau", prefix="tau_base_", shares_prefix_with="tau_base", is_mixed_compatible=True, default_target_modules=targets
    )
    method = register_peft_method("tau", model, plugin_api=">=1,<2")
    assert method.config_cls is model.config_cls and method.model_cls is model
    assert method.prefix == "tau_base_" == base.prefix and method.shares_prefix_with == "tau_base"
    assert method.is_mixed_compatible and not base.is_mixed_compatible
    assert dict(method.default_target_modules) == {"llama": ("q_proj", "v_proj"), "gpt2": "c_attn"}
    assert register_peft_method("tau", model, plugin_api=">=1,<2") is method  # re-import: no-op
    # the keyword form with the same facts stated again (agreeing, a tuple for a list) is the same registration
    assert register_peft_method(
        name="tau", config_cls=model.config_cls, model_cls=model, prefix="tau_base_", is_mixed_compatible=True,
        default_target_modules={"llama": ("q_proj", "v_proj"), "gpt2": "c_attn"}, plugin_api=">=1,<2",
    ) is method


@pytest.mark.parametrize(
    ("facts", "kwargs", "message"),
    [
        ({"is_mixed_compatible": True}, {"is_mixed_compatible": False}, r"is_mixed_compatible=False\) contradicts .*Model\.is_mixed_compatible = True"),
        ({"default_target_modules": {"llama": ("q_proj",)}}, {"default_target_modules": {"llama": ("k_proj",)}}, "default_target_modules=.*contradicts"),
        ({"shares_prefix_with": "lora"}, {"shares_prefix_with": "vera"}, r"shares_prefix_with='vera'\) contradicts"),
        ({}, {"config_cls": "other"}, r"config_cls='other'\) contradicts .*UpsilonModel\.config_cls = .*UpsilonConfig"),
    ],
    ids=["mixed", "targets", "shares", "config"],
)
def test_a_keyword_contradicting_the_model_class_is_refused(facts, kwargs, message):
    with pytest.raises(RegistrationError, match=message) as err:
        register_peft_method("upsilon", short_form_model("upsilon", **facts), plugin_api=">=1,<2", **kwargs)
    assert "State it once" in str(err.value)
    assert "upsilon" not in registered_methods()


def test_short_form_without_config_cls_says_where_to_put_it():
    _, model = make_method("phi")
    with pytest.raises(RegistrationError, match=r"got None\. Set `config_cls = MyConfig` on .*PhiModel"):
        register_peft_method("phi", model, plugin_api=">=1,<2")


def test_wrongly_typed_facts_on_the_model_class_are_refused():
    with pytest.raises(RegistrationError, match="is_mixed_compatible must be True or False"):
        register_peft_method("chi", short_form_model("chi", is_mixed_compatible="yes"), plugin_api=">=1,<2")
    with pytest.raises(RegistrationError, match="default_target_modules must map model_type"):
        register_peft_method("chi", short_form_model("chi", default_target_modules=["q_proj"]), plugin_api=">=1,<2")
    assert "chi" not in registered_methods()


def test_every_workspace_method_states_its_facts_once():
    """The workspace's method packages register the short way: what the registry holds is on the model class."""
    import sys
    from pathlib import Path

    from peft_core.discovery import load_all_methods

    packages = Path(__file__).resolve().parents[2]
    checked = 0
    for method in load_all_methods().values():
        file = getattr(sys.modules.get(method.module), "__file__", None)
        source = Path(file).resolve() if file else None
        if source is None or not source.is_relative_to(packages) or source.parent.parent.name != "src":
            continue  # the tests' toy methods, outside packages
        cls = method.model_cls
        assert cls.config_cls is method.config_cls and cls.prefix == method.prefix, method.name
        assert bool(getattr(cls, "is_mixed_compatible", False)) == method.is_mixed_compatible, method.name
        declared = {k: v if isinstance(v, str) else tuple(v) for k, v in (getattr(cls, "default_target_modules", None) or {}).items()}
        assert declared == dict(method.default_target_modules), method.name
        checked += 1
    if checked == 0:  # peft-core tested alone (the isolation job's fresh venv holds no method package)
        pytest.skip("no method package of the workspace is installed next to peft-core")
    assert checked >= 40  # every method package of the workspace (45 today)


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


def test_a_prefix_starting_with_another_is_refused(cleanup):
    # 'mu_' and 'mu_x_': a parameter 'mu_x_A' would start with both, whichever registers first
    cfg, model = make_method("mu")
    cleanup.extend(["mu", "mu_x"])
    register_peft_method(name="mu", config_cls=cfg, model_cls=model, plugin_api=">=1,<2")
    longer_cfg, longer_model = make_method("mu_x")
    with pytest.raises(RegistrationError) as err:
        register_peft_method(name="mu_x", config_cls=longer_cfg, model_cls=longer_model, plugin_api=">=1,<2")
    msg = str(err.value)
    assert "'mu_x_' starts with 'mu_'" in msg and "'mu'" in msg and "'mu_x'" in msg
    assert "mu_x" not in registered_methods()
    unregister_peft_method("mu")
    register_peft_method(name="mu_x", config_cls=longer_cfg, model_cls=longer_model, plugin_api=">=1,<2")
    with pytest.raises(RegistrationError, match="overlaps prefix 'mu_x_'"):  # the other order too
        register_peft_method(name="mu", config_cls=cfg, model_cls=model, plugin_api=">=1,<2")


def test_prefixes_conflict_is_the_documented_rule():
    from peft_core.registry import prefixes_conflict

    assert prefixes_conflict("lora_", "lora_x_") and prefixes_conflict("lora_x_", "lora_")
    assert not prefixes_conflict("lora_", "delora_") and not prefixes_conflict("oft_", "boft_")


def test_every_installed_method_keeps_the_prefix_rule():
    from peft_core.discovery import load_all_methods
    from peft_core.registry import prefixes_conflict

    methods = list(load_all_methods().values())
    for a in methods:
        for b in methods:
            if a.name < b.name and prefixes_conflict(a.prefix, b.prefix):
                assert a.prefix == b.prefix and b.name in (a.shares_prefix_with, None) or a.name == b.shares_prefix_with


def test_missing_plugin_api_warns_once(cleanup, recwarn):
    cfg, model = make_method("nu")
    cleanup.append("nu")
    with pytest.warns(PeftWarning, match="without plugin_api") as caught:
        register_peft_method(name="nu", config_cls=cfg, model_cls=model)
    assert caught[0].filename == __file__  # points at the registering package, not at peft-core
    assert "nu" in registered_methods()
    register_peft_method(name="nu", config_cls=cfg, model_cls=model)  # re-import: already registered, no warning
    assert not [w for w in recwarn if issubclass(w.category, PeftWarning)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix must be a non-empty string"),
        ({"is_mixed_compatible": "yes"}, "is_mixed_compatible must be True or False"),
        ({"shares_prefix_with": ["lora"]}, "shares_prefix_with must be the name"),
        ({"default_target_modules": ["q_proj"]}, "default_target_modules must map model_type"),
        ({"default_target_modules": {"llama": [1]}}, r"default_target_modules\['llama'\]"),
    ],
    ids=["empty-prefix", "flag-string", "shares-list", "targets-list", "targets-not-names"],
)
def test_wrongly_typed_arguments_are_refused(kwargs, message):
    cfg, model = make_method("xi", prefix=kwargs.get("prefix", "xi_"))
    with pytest.raises(RegistrationError, match=message):
        register_peft_method(name="xi", config_cls=cfg, model_cls=model, plugin_api=">=1,<2", **kwargs)
    assert "xi" not in registered_methods()


@pytest.mark.parametrize("config_cls", [None, dict, "LoraConfig"])
def test_config_cls_that_is_no_peft_config(config_cls):
    _, model = make_method("omicron")
    with pytest.raises(RegistrationError, match="config_cls must be a PeftConfig subclass"):
        register_peft_method(name="omicron", config_cls=config_cls, model_cls=model, plugin_api=">=1,<2")
