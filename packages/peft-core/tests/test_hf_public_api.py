"""Hugging Face PEFT's public helpers that peft-core now has: status reports, gradients per adapter,
base-model state dicts, load reports, `get_peft_config`, mixed-precision casting, AutoPeftModel, and a
`forward` that shows the wrapped model's arguments (plain `transformers.Trainer` with no subclass).

The toy method (tests/_support/peft_toy) on small models; nothing is downloaded.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from peft_core import (
    AutoPeftModel,
    AutoPeftModelForCausalLM,
    ConfigError,
    LoadReport,
    PeftModel,
    cast_mixed_precision_params,
    get_base_model_state_dict,
    get_layer_status,
    get_model_status,
    get_peft_config,
    get_peft_model,
    rescale_adapter_scale,
    set_base_model_state_dict,
    set_requires_grad,
)
from peft_core.base_state_dict import BaseStateDictMismatch
from peft_toy import ToyConfig
from core_test_models import MLP, make_tiny_llama


def _two_adapter_mlp():
    torch.manual_seed(0)
    model = get_peft_model(MLP(), ToyConfig(target_modules=["lin0", "lin1"], modules_to_save=["head"], init_weights=False))
    model.add_adapter("other", ToyConfig(target_modules=["lin0"], init_weights=False))
    return model


def test_layer_and_model_status_report_each_adapter_layer():
    model = _two_adapter_mlp()
    layers = {s.name: s for s in get_layer_status(model)}
    assert set(layers) == {"model.lin0", "model.lin1", "model.head"}
    lin0 = layers["model.lin0"]
    assert lin0.module_type == "ToyLinear" and lin0.enabled and lin0.merged_adapters == []
    assert lin0.active_adapters == ["default"] and lin0.available_adapters == ["default", "other"]
    assert lin0.requires_grad == {"default": True, "other": False}
    assert lin0.devices == {"default": ["cpu"], "other": ["cpu"]} and lin0.quantization_backend is None
    assert layers["model.head"].available_adapters == ["default"]

    status = get_model_status(model)
    assert (status.base_model_type, status.adapter_model_type) == ("MLP", "ToyModel")
    assert status.peft_types == {"default": "TOY", "other": "TOY"} and status.num_adapter_layers == 3
    assert status.enabled is True and status.active_adapters == ["default"] and status.merged_adapters == []
    assert status.requires_grad == {"default": True, "other": False}
    assert status.available_adapters == ["default", "other"]
    assert status.trainable_params == model.get_nb_trainable_parameters()[0]

    model.base_model.model.lin1.merge()
    status = get_model_status(model)
    assert status.merged_adapters == "irregular"  # merged in lin1 only
    model.base_model.model.lin1.unmerge()
    model.base_model.model.lin0.enable_adapters(False)
    assert get_model_status(model).enabled == "irregular"


def test_status_needs_adapter_layers():
    with pytest.raises(ValueError, match="No adapter layers"):
        get_layer_status(MLP())


def test_set_requires_grad_and_active_peft_config():
    model = _two_adapter_mlp()
    assert model.active_peft_config is model.peft_config["default"]
    model.set_requires_grad("other")
    assert get_model_status(model).requires_grad == {"default": True, "other": True}
    set_requires_grad(model, ["default", "other"], requires_grad=False)
    assert get_model_status(model).requires_grad == {"default": False, "other": False}
    assert model.get_model_status().requires_grad == {"default": False, "other": False}


def test_base_model_state_dict_has_the_unadapted_keys_and_loads_back():
    torch.manual_seed(0)
    plain = MLP()
    reference = {k: v.clone() for k, v in plain.state_dict().items()}
    model = get_peft_model(plain, ToyConfig(target_modules=["lin0"], modules_to_save=["head"], init_weights=False))
    base = get_base_model_state_dict(model)
    assert base.keys() == reference.keys()
    assert all(torch.equal(base[k], reference[k]) for k in reference)

    new = {k: torch.randn_like(v) for k, v in reference.items()}
    result = set_base_model_state_dict(model, new)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(model.base_model.model.lin0.base_layer.weight, new["lin0.weight"])
    assert torch.equal(model.base_model.model.head.original_module.weight, new["head.weight"])

    partial = {"lin1.weight": new["lin1.weight"], "extra": torch.zeros(1)}
    with pytest.raises(BaseStateDictMismatch, match="missing keys"):
        set_base_model_state_dict(model, partial)
    result = set_base_model_state_dict(model, partial, strict=False)
    assert result.unexpected_keys == ["extra"] and "lin0.weight" in result.missing_keys


def test_load_adapter_returns_report_and_reloads_existing_adapter(tmp_path):
    model = _two_adapter_mlp()
    model.save_pretrained(tmp_path)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".toy_" in name:
                param.add_(1.0)
    report = model.load_adapter(tmp_path / "other", "other")  # exists already: its weights come back
    assert isinstance(report, LoadReport) and report.missing_keys == [] and report.unexpected_keys == []
    state = model.state_dict()
    other_keys = [k for k in trained if ".toy_" in k and ".other" in k]
    assert other_keys and all(torch.equal(state[k], trained[k]) for k in other_keys)
    report = model.load_adapter(tmp_path, "third")
    assert report.missing_keys == [] and "third" in model.peft_config


def test_get_peft_config_builds_the_registered_class():
    config = get_peft_config({"peft_type": "TOY", "r": 3, "target_modules": ["lin0"]})
    assert isinstance(config, ToyConfig) and config.r == 3
    assert config.peft_type.value == "TOY" and config.peft_type == "TOY"


def test_cast_mixed_precision_params():
    model = get_peft_model(MLP(), ToyConfig(target_modules=["lin0"]))
    cast_mixed_precision_params(model, torch.bfloat16)
    for name, param in model.named_parameters():
        assert param.dtype == (torch.float32 if param.requires_grad else torch.bfloat16), name


def test_rescale_needs_layers_with_a_scaling():
    model = get_peft_model(MLP(), ToyConfig(target_modules=["lin0"]))
    with pytest.raises(ValueError, match="scaling"):
        with rescale_adapter_scale(model, 0.5):
            pass


def test_forward_signature_is_the_wrapped_models():
    llama = get_peft_model(make_tiny_llama(), ToyConfig(target_modules=["q_proj"], task_type="CAUSAL_LM"))
    params = inspect.signature(llama.forward).parameters
    assert "input_ids" in params and "labels" in params and "attention_mask" in params
    assert "labels" in inspect.signature(type(llama).forward).parameters  # what Trainer's find_labels reads
    mlp = get_peft_model(MLP(), ToyConfig(target_modules=["lin0"]))
    assert list(inspect.signature(mlp.forward).parameters) == ["x"]
    x = torch.randn(2, 8)
    assert torch.equal(mlp(x), mlp.base_model(x))


def test_plain_trainer_keeps_columns_and_reports_eval_loss(tmp_path):
    transformers = pytest.importorskip("transformers")

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            ids = torch.randint(0, 128, (10,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "labels": ids, "text_length": 10}

    torch.manual_seed(0)
    model = get_peft_model(make_tiny_llama(), ToyConfig(target_modules=["q_proj"], task_type="CAUSAL_LM"))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, report_to=[], use_cpu=True,
        save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Rows(), eval_dataset=Rows())
    assert trainer.label_names == ["labels"]
    trainer.train()  # used to fail: "The batch received was empty"
    assert "eval_loss" in trainer.evaluate()


def test_auto_peft_model_loads_base_and_adapter(tmp_path):
    base = make_tiny_llama(seed=3)
    base.save_pretrained(tmp_path / "base")
    model = get_peft_model(
        make_tiny_llama(seed=3), ToyConfig(target_modules=["q_proj"], init_weights=False, task_type="CAUSAL_LM")
    )
    model.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    model.save_pretrained(tmp_path / "adapter")
    x = torch.randint(0, 128, (2, 5))
    loaded = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "adapter")
    assert type(loaded).__name__ == "PeftModelForCausalLM"
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, model(input_ids=x).logits)
    with pytest.raises(ConfigError, match="task_type"):
        AutoPeftModel.from_pretrained(tmp_path / "adapter")

    untyped = get_peft_model(make_tiny_llama(seed=3), ToyConfig(target_modules=["q_proj"], init_weights=False))
    untyped.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    untyped.save_pretrained(tmp_path / "untyped")
    loaded = AutoPeftModel.from_pretrained(tmp_path / "untyped")
    assert type(loaded) is PeftModel and type(loaded.get_base_model()).__name__ == "LlamaForCausalLM"
    with pytest.raises(ConfigError, match="allowlist"):
        AutoPeftModel.from_pretrained(tmp_path / "untyped", import_allowlist=["diffusers"])
