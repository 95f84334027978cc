"""The `peft` import itself: Hugging Face PEFT 0.21.2's names, module paths, `PeftType`, how transformers /
accelerate detect it (distribution metadata), the refusal beside Hugging Face's distribution, and the
helpers re-exported from peft-core."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest
import torch

import peft
from compat_models import tiny_llama
from peft._hf_api import HF_ALL

CORE_NAMES = {
    "PeftConfig", "PeftModel", "PeftModelForCausalLM", "PeftModelForFeatureExtraction", "PeftModelForQuestionAnswering",
    "PeftModelForSeq2SeqLM", "PeftModelForSequenceClassification", "PeftModelForTokenClassification", "PeftType",
    "TaskType", "PromptLearningConfig", "PeftMixedModel", "get_peft_model", "inject_adapter_in_model",
    "get_peft_model_state_dict", "set_peft_model_state_dict", "load_peft_weights", "get_peft_config",
    "get_layer_status", "get_model_status", "get_base_model_state_dict", "set_base_model_state_dict",
    "cast_mixed_precision_params", "shift_tokens_right", "AutoPeftModel", "AutoPeftModelForCausalLM",
    "AutoPeftModelForFeatureExtraction", "AutoPeftModelForQuestionAnswering", "AutoPeftModelForSeq2SeqLM",
    "AutoPeftModelForSequenceClassification", "AutoPeftModelForTokenClassification", "PEFT_TYPE_TO_CONFIG_MAPPING",
    "PEFT_TYPE_TO_TUNER_MAPPING", "PEFT_TYPE_TO_MIXED_MODEL_MAPPING", "MODEL_TYPE_TO_PEFT_MODEL_MAPPING", "PeftError",
    "PeftWarning",
}


def _fresh(code: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", **kwargs)


def test_every_hf_name_resolves_or_says_what_to_install():
    from peft_core import load_all_methods

    methods = {m.module for m in load_all_methods().values()}
    resolved, missing = [], []
    for name in HF_ALL:
        try:
            getattr(peft, name)
            resolved.append(name)
        except AttributeError as exc:
            assert "Hugging Face PEFT 0.21.2" in str(exc) and "migrating" in str(exc), (name, str(exc))
            missing.append(name)
    assert CORE_NAMES - {"PeftWarning"} <= set(resolved) | {"PeftWarning"}
    assert "PeftWarning" in resolved
    # every installed method's config and model class resolves to that package's class under HF's name
    for method in load_all_methods().values():
        for cls in (method.config_cls, method.model_cls):
            if cls.__name__ in HF_ALL:
                assert getattr(peft, cls.__name__) is cls, cls
    assert methods
    assert getattr(peft, "LoraConfig").__module__.startswith("peft_lora")
    assert set(dir(peft)) >= set(HF_ALL)
    print(f"{len(resolved)} of {len(HF_ALL)} names of HF PEFT's peft.__all__ resolve; missing: {sorted(missing)}")


def test_unknown_name_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        peft.not_a_name


def test_peft_type_is_enum_like():
    from peft import LoraConfig, PeftType

    config = LoraConfig()
    assert config.peft_type == PeftType.LORA == "LORA" and config.peft_type.value == "LORA"
    assert PeftType("LORA") is not None and PeftType["IA3"].value == "IA3" and "LORA" in PeftType
    assert PeftType.XLORA == "XLORA"  # a Hugging Face member, though no package provides it
    assert {"LORA", "IA3", "PROMPT_TUNING", "XLORA"} <= set(PeftType)
    with pytest.raises(ValueError):
        PeftType("NOT_A_METHOD")
    assert peft.PEFT_TYPE_TO_CONFIG_MAPPING[PeftType.LORA] is LoraConfig
    assert peft.PEFT_TYPE_TO_TUNER_MAPPING["LORA"].__name__ == "LoraModel"


def test_module_paths_libraries_import():
    from peft.functional import delete_adapter, set_adapter, set_requires_grad  # noqa: F401
    from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
    from peft.utils import ModulesToSaveWrapper, PeftType, get_peft_model_state_dict  # noqa: F401
    from peft.utils.other import AuxiliaryTrainingWrapper
    from peft.utils.transformers_weight_conversion import build_peft_weight_mapping  # noqa: F401
    from peft_core import BaseTunerLayer as CoreLayer

    assert BaseTunerLayer is CoreLayer and AuxiliaryTrainingWrapper is ModulesToSaveWrapper and BaseTuner
    import peft.tuners.lora as lora_module
    import peft_lora

    assert lora_module is peft_lora and peft.tuners.lora.LoraLayer is peft_lora.LoraLayer
    assert peft.tuners.LoraConfig is peft.LoraConfig
    assert peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["llama"] == ["q_proj", "v_proj"]
    import peft_xlora

    assert importlib.import_module("peft.tuners.xlora") is peft_xlora  # every method's tuner module maps
    with pytest.raises(ModuleNotFoundError, match="no_such_method"):
        importlib.import_module("peft.tuners.no_such_method")


def test_submodule_paths_share_the_method_package_modules():
    # `from peft.tuners.lora.config import BdLoraConfig` (as HF PEFT's own tests import it) used to execute
    # peft_lora/config.py a second time as a new module: a second BdLoraConfig that LoraConfig refused
    probe = (
        "import sys; from peft.tuners.lora.config import BdLoraConfig; import peft.tuners.lora.variants.configs as v; "
        "import peft_lora, peft_lora.config; from peft.tuners.tuners_utils import BaseTunerLayer; "
        "from peft import LoraConfig; "
        "c = LoraConfig(target_modules=['a'], use_bdlora=BdLoraConfig(target_modules_bd_a=['a'])); "
        "copies = sorted(n for n in sys.modules if n.startswith('peft.tuners.lora.') and sys.modules[n].__name__ == n); "
        "print(BdLoraConfig is peft_lora.BdLoraConfig, v is sys.modules['peft_lora.variants.configs'], "
        "peft_lora.config.__spec__.name, BaseTunerLayer.__module__, copies)"
    )
    out = _fresh(probe, check=True).stdout.split()
    assert out == ["True", "True", "peft_lora.config", "peft_core.tuners.layer", "[]"], out


def test_distribution_metadata_as_libraries_read_it():
    assert importlib.metadata.packages_distributions()["peft"] == ["peft-compat"]
    probe = (
        "import importlib.metadata as m, sys; v = m.version('peft'); n = m.metadata('peft')['Name']; "
        "from accelerate.utils import is_peft_available as acc; "
        "from transformers.utils.import_utils import is_peft_available, is_peft_greater_or_equal; "
        "print(v, n, acc(), is_peft_available(), is_peft_greater_or_equal('0.21.2'), 'peft' in sys.modules)"
    )
    out = _fresh(probe, check=True).stdout.split()
    # found before `import peft`, under peft-compat's own name, at the API level it provides
    assert out == ["0.21.2", "peft-compat", "True", "True", "True", "False"], out
    assert peft.__version__ == importlib.metadata.version("peft-compat") == "0.21.2"


def test_refuses_to_import_beside_hugging_face_peft(tmp_path):
    info = tmp_path / "peft-0.21.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: peft\nVersion: 0.21.2\n")
    proc = _fresh("import peft", env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "Hugging Face's `peft` 0.21.2 is installed" in proc.stderr
    assert "pip uninstall" in proc.stderr


def test_import_peft_is_cheap():
    out = _fresh("import sys, peft; print(sorted(m for m in ('torch', 'transformers', 'peft_core') if m in sys.modules))",
                 check=True).stdout.strip()
    assert out == "[]"


def test_rescale_adapter_scale_and_status_on_lora():
    from peft import LoraConfig, get_peft_model
    from peft.helpers import rescale_adapter_scale

    torch.manual_seed(1)
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)).eval()
    ids = torch.randint(0, 128, (1, 5))
    with torch.no_grad():
        full = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        with rescale_adapter_scale(model, 0.0):
            assert torch.allclose(model(input_ids=ids).logits, base, atol=1e-6)
        assert torch.equal(model(input_ids=ids).logits, full)
    status = peft.get_model_status(model)
    assert status.peft_types == {"default": "LORA"} and status.num_adapter_layers == 2
    assert peft.get_layer_status(model)[0].module_type.endswith("Linear")
