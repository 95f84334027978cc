"""Training across processes runs on torch.distributed (so torchrun / accelerate work), nothing home-made.

One launch of `_lora_distributed_worker.py` trains a tiny LoRA model on 2 CPU processes (gloo) with
DistributedDataParallel and with FSDP2 `fully_shard`; every rank sees half of each batch. The
adapter must equal the same steps run in one process on the full batches (SGD, mean loss), only
rank 0 may write it, and every rank must load it back.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "_lora_distributed_worker.py")

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch built without torch.distributed / gloo",
)


def _worker_module():
    spec = importlib.util.spec_from_file_location("_lora_distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, WORKER, str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=HERE
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def reference():
    """The same steps in this process, on the full batches."""
    return _worker_module().single_process_adapter()


def _assert_same_adapter(got, expected):
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert torch.allclose(got[key], expected[key], rtol=1e-5, atol=1e-6), (key, (got[key] - expected[key]).abs().max())


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_two_processes_train_the_same_adapter_as_one(run, reference, strategy):
    initial = _worker_module().make_model()
    from peft_core import get_peft_model_state_dict

    untrained = get_peft_model_state_dict(initial)
    assert any(not torch.equal(untrained[k], reference[k]) for k in reference)  # training moved the adapter
    ranks = range(2) if strategy == "ddp" else [0]  # FSDP2: the gathered full state lives on rank 0
    for rank in ranks:
        result = torch.load(run / f"{strategy}_rank{rank}.pt")
        _assert_same_adapter(result["trained"], reference)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_only_rank_zero_writes_and_every_rank_loads(run, reference, strategy):
    # Rank 1 called save_pretrained(..., is_main_process=False) with file writes made to fail: it wrote nothing.
    adapter_dir = run / f"{strategy}_adapter"
    assert sorted(os.listdir(adapter_dir)) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    for rank in range(2):
        _assert_same_adapter(torch.load(run / f"{strategy}_rank{rank}.pt")["loaded"], reference)


def test_fsdp2_sharded_the_adapter_layers(run):
    rank0, rank1 = (torch.load(run / f"fsdp2_rank{r}.pt") for r in range(2))
    assert "base_model.model.lin0.lora_A.default.weight" in rank0["sharded"]
    assert "base_model.model.lin0.base_layer.weight" in rank0["sharded"]
    assert rank0["full_keys_on_this_rank"] > 0 and rank1["full_keys_on_this_rank"] == 0  # cpu_offload: rank 0 only


def test_saving_sharded_parameters_without_gathering_is_refused_clearly(run):
    message = torch.load(run / "fsdp2_rank0.pt")["sharded_save_error"]
    assert message is not None and "sharded DTensor" in message
    assert "get_model_state_dict" in message and "is_main_process" in message
    assert not os.path.exists(run / "fsdp2_unsharded_attempt")  # nothing written
    assert torch.load(run / "fsdp2_rank1.pt")["sharded_save_error"] is None  # not the main process: no-op


def test_a_partial_state_dict_is_refused(reference):
    from peft_core import get_peft_model_state_dict

    model = _worker_module().make_model()
    state = model.state_dict()
    del state["base_model.model.lin1.lora_B.default.weight"]
    with pytest.raises(ValueError, match=r"lacks 1 of its tensors \(\[base_model.model.lin1.lora_B.default.weight\]"):
        get_peft_model_state_dict(model, state_dict=state)
