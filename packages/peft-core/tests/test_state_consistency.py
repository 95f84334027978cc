"""Operations on a PeftModel leave it in a consistent state: all-or-nothing safe merges, no deleting a
merged adapter, `disable_adapter()` that restores exactly what was there, dtypes that follow the load
options, configs saved as set, distributed wrappers that don't leak into keys, documented threading."""

from __future__ import annotations

import copy
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from core_test_models import MLP

from peft_core import (
    AdapterStateError,
    ConfigError,
    PeftConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    set_peft_model_state_dict,
)


def _model(toy, mlp, targets=("lin0", "lora_proj", "lin1"), **kwargs):
    torch.manual_seed(0)
    return get_peft_model(mlp, toy.ToyConfig(target_modules=list(targets), init_weights=False, **kwargs))


def _base_weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}


# -- merging ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["merge_adapter", "merge_and_unload"])
def test_a_failed_safe_merge_changes_no_base_weight(toy, mlp, how):
    model = _model(toy, mlp)
    with torch.no_grad():
        model.base_model.model.lin1.toy_B["default"].weight[0, 0] = float("inf")  # the last layer is broken
    before = _base_weights(model)
    with pytest.raises(AdapterStateError, match="no base weight of the model was changed"):
        if how == "merge_adapter":
            model.merge_adapter(safe_merge=True)
        else:
            model.merge_and_unload(safe_merge=True)
    after = _base_weights(model)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not any(layer.merged for layer in model.base_model.tuner_layers())
    assert type(model.base_model.model.lin0).__name__ == "ToyLinear"  # nothing unloaded either


def test_a_successful_safe_merge_equals_a_plain_merge(toy, mlp):
    plain, safe = _model(toy, copy.deepcopy(mlp)), _model(toy, copy.deepcopy(mlp))
    plain.merge_adapter()
    safe.merge_adapter(safe_merge=True)
    a, b = _base_weights(plain), _base_weights(safe)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_deleting_a_merged_adapter_is_refused(toy, mlp):
    model = _model(toy, mlp)
    model.add_adapter("other", toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    model.merge_adapter()
    with pytest.raises(AdapterStateError, match="unmerge_adapter"):
        model.delete_adapter("default")
    assert "default" in model.peft_config
    model.unmerge_adapter()
    model.delete_adapter("default")
    assert list(model.peft_config) == ["other"]


# -- disable_adapter ------------------------------------------------------------------------------------
def _disabled_flags(model):
    return {id(m): m._disable_adapters for m in model.base_model.adapter_modules()}


def test_leaving_disable_adapter_restores_the_previous_state(toy, mlp):
    model = _model(toy, mlp, modules_to_save=["head"])
    model.base_model.model.lin0.enable_adapters(False)  # disabled by the user before
    flags_before = _disabled_flags(model)
    grads_before = {n: p.requires_grad for n, p in model.named_parameters()}
    x = torch.randn(2, 8)
    with model.disable_adapter():
        assert all(m._disable_adapters for m in model.base_model.adapter_modules())
        assert not any(p.requires_grad for n, p in model.named_parameters() if ".toy_" in n or "modules_to_save" in n)
        model(x)
    assert _disabled_flags(model) == flags_before  # lin0 stays disabled
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads_before


def test_disable_adapter_keeps_a_loaded_inference_adapter_frozen(toy, mlp, tmp_path):
    _model(toy, copy.deepcopy(mlp)).save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)
    with loaded.disable_adapter():
        pass
    assert not any(p.requires_grad for p in loaded.parameters())


def test_disable_adapter_restores_even_after_an_error(toy, mlp):
    model = _model(toy, mlp)
    with pytest.raises(RuntimeError, match="boom"):
        with model.disable_adapter():
            raise RuntimeError("boom")
    assert not any(m._disable_adapters for m in model.base_model.adapter_modules())
    assert any(p.requires_grad for p in model.parameters())


# -- dtypes under low_cpu_mem_usage ----------------------------------------------------------------------
@pytest.mark.parametrize("autocast", [True, False])
def test_low_cpu_mem_usage_honours_autocast_adapter_dtype(toy, mlp, tmp_path, autocast):
    _model(toy, copy.deepcopy(mlp)).save_pretrained(tmp_path)
    dtypes = {}
    for low in (False, True):
        base = copy.deepcopy(mlp).to(torch.bfloat16)
        loaded = PeftModel.from_pretrained(base, tmp_path, low_cpu_mem_usage=low, autocast_adapter_dtype=autocast)
        dtypes[low] = {n: p.dtype for n, p in loaded.named_parameters() if ".toy_" in n}
    assert dtypes[True] == dtypes[False]
    assert set(dtypes[True].values()) == ({torch.float32} if autocast else {torch.bfloat16})


# -- configs --------------------------------------------------------------------------------------------
def test_peft_config_save_pretrained_writes_what_was_set(toy, tmp_path):
    toy.ToyConfig(target_modules=["lin0"], inference_mode=False).save_pretrained(tmp_path / "train")
    assert json.loads((tmp_path / "train" / "adapter_config.json").read_text())["inference_mode"] is False
    toy.ToyConfig(target_modules=["lin0"], inference_mode=True).save_pretrained(tmp_path / "infer")
    assert json.loads((tmp_path / "infer" / "adapter_config.json").read_text())["inference_mode"] is True


def test_peft_model_save_pretrained_still_saves_inference_mode_true(toy, mlp, tmp_path):
    model = _model(toy, mlp)
    assert model.peft_config["default"].inference_mode is False
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["inference_mode"] is True
    assert model.peft_config["default"].inference_mode is False


@pytest.mark.parametrize("content", [{"model_type": "llama", "hidden_size": 32}, {}])
def test_a_config_file_without_any_peft_field_is_refused(toy, tmp_path, content):
    (tmp_path / "adapter_config.json").write_text(json.dumps(content))
    with pytest.raises(ConfigError, match="is not an adapter config: it has no 'peft_type'"):
        toy.ToyConfig.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="peft_type"):
        PeftConfig.from_pretrained(tmp_path)


def test_a_config_file_of_known_fields_without_peft_type_loads_with_the_class(toy, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "target_modules": ["lin0"]}))
    assert toy.ToyConfig.from_pretrained(tmp_path).r == 4  # as Hugging Face PEFT does


# -- FSDP1 ----------------------------------------------------------------------------------------------
def test_fsdp1_wrapped_model_state_dict_has_plain_keys_and_reloads(toy, mlp, tmp_path):
    from core_subprocess import run_python

    support = os.path.join(os.path.dirname(__file__), "_support")
    result = run_python(
        f"""
        import os, torch, torch.distributed as dist
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000))
        dist.init_process_group("gloo", rank=0, world_size=1)
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        import peft_toy
        from core_test_models import MLP
        from peft_core import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
        torch.manual_seed(0)
        model = get_peft_model(MLP(), peft_toy.ToyConfig(target_modules=["lin0"], init_weights=False))
        expected = {{k: v.clone() for k, v in get_peft_model_state_dict(model).items()}}
        wrapped = FSDP(model, device_id=torch.device("cpu"), use_orig_params=True)
        state = get_peft_model_state_dict(wrapped)
        assert sorted(state) == sorted(expected), sorted(state)
        assert all(torch.equal(state[k], expected[k]) for k in state)
        full = wrapped.state_dict()  # FSDP's own state dict drops the wrapper names too
        assert sorted(get_peft_model_state_dict(wrapped, state_dict=full)) == sorted(expected)
        fresh = get_peft_model(MLP(), peft_toy.ToyConfig(target_modules=["lin0"]))
        report = set_peft_model_state_dict(fresh, state)
        assert not report.missing_keys and not report.unexpected_keys
        dist.destroy_process_group()
        print("ok")
        """,
        [support],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


# -- threads --------------------------------------------------------------------------------------------
def test_concurrent_forwards_on_a_fixed_adapter_are_exact(toy, mlp):
    """Documented as safe: forward passes from many threads while no thread changes the adapters."""
    model = _model(toy, mlp).eval()
    inputs = [torch.randn(4, 8) for _ in range(16)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
        barrier = threading.Barrier(8)

        def run(i):
            if i < 8:
                barrier.wait()
            return torch.equal(model(inputs[i % 16]), expected[i % 16])

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(run, range(64)))


def test_per_call_adapter_names_from_many_threads_are_exact(toy, mlp):
    """Documented as the safe way to serve several adapters from threads: `adapter_names=[...]` per call
    (the batch plan is per thread), never `set_adapter` while other threads run forward passes."""
    model = _model(toy, mlp, targets=("lin0",))
    model.add_adapter("other", toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    model.eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        per_adapter = {}
        for name in ("default", "other"):
            model.set_adapter(name)
            per_adapter[name] = model(x)
        model.set_adapter("default")

        def run(i):
            names = ["default", "other", "__base__", "other"] if i % 2 else ["other", "default", "other", "__base__"]
            out = model(x, adapter_names=names)
            return all(
                torch.allclose(out[r], per_adapter[n][r]) if n != "__base__" else True for r, n in enumerate(names)
            )

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(run, range(48)))


def test_thread_safety_is_documented():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    doc = os.path.join(root, "docs", "concepts.md")
    if not os.path.isfile(doc):
        pytest.skip("docs are not shipped with the package")
    text = open(doc, encoding="utf-8").read()
    assert "## Threads" in text and "set_adapter" in text and "adapter_names" in text
    assert "Thread safety" in (PeftModel.set_adapter.__doc__ or "")
