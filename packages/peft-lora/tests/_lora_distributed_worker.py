"""Launched by test_distributed.py: LoRA training on 2 CPU processes over torch.distributed (gloo).

    python _lora_distributed_worker.py OUT_DIR

Runs, in one launch, (1) DistributedDataParallel and (2) FSDP2 `fully_shard`, each training the
same tiny LoRA model for a few SGD steps with every rank on its half of each batch, then saving
the adapter with `save_pretrained(..., is_main_process=(rank == 0))` and loading it on every rank.
Results go to OUT_DIR as tensors; the test compares them with one process on the full batches.

The processes are forked from this script after its imports (no torch op has run yet), which
saves each rank re-importing torch; the processes meet through a file in OUT_DIR (no ports).
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import peft_lora
from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict

WORLD_SIZE = 2
STEPS = 3
BATCH = 8  # per step, over all ranks
LR = 0.5


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.act = nn.Tanh()
        self.lin1 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(self.act(self.lin0(x)))


def make_base() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def make_model():
    """The same base weights and the same non-zero LoRA init on every rank (and in the reference)."""
    config = peft_lora.LoraConfig(target_modules=["lin0", "lin1"], r=4, lora_alpha=8, init_lora_weights=False)
    base = make_base()
    torch.manual_seed(1)
    return get_peft_model(base, config)


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(BATCH, 8, generator=g), torch.randn(BATCH, 4, generator=g)) for _ in range(STEPS)]


def train(model: nn.Module, trainable: list, rank: int = 0, world_size: int = 1) -> None:
    """SGD on a mean-reduced loss: averaging the ranks' gradients equals the full-batch gradient."""
    opt = torch.optim.SGD(trainable, lr=LR)
    per_rank = BATCH // world_size
    for x, y in batches():
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        loss = nn.functional.mse_loss(model(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()


def single_process_adapter() -> dict[str, torch.Tensor]:
    model = make_model()
    train(model, [p for p in model.parameters() if p.requires_grad])
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def _forbid_writes_off_the_main_process(rank: int) -> None:
    if rank == 0:
        return
    from peft_core import serialization

    def refuse(path, write):
        raise AssertionError(f"rank {rank} tried to write {path}")

    serialization._write_temp = refuse


def _load_on_this_rank(adapter_dir: str) -> dict[str, torch.Tensor]:
    loaded = PeftModel.from_pretrained(make_base(), adapter_dir)
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(loaded).items()}


def ddp(rank: int, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    model = make_model()
    wrapped = DistributedDataParallel(model)
    train(wrapped, [p for p in model.parameters() if p.requires_grad], rank, WORLD_SIZE)
    adapter_dir = os.path.join(out, "ddp_adapter")
    _forbid_writes_off_the_main_process(rank)
    model.save_pretrained(adapter_dir, is_main_process=(rank == 0))
    dist.barrier()  # rank 0 has written the adapter
    trained = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    torch.save({"trained": trained, "loaded": _load_on_this_rank(adapter_dir)}, os.path.join(out, f"ddp_rank{rank}.pt"))


def fsdp2(rank: int, out: str) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from peft_core import BaseTunerLayer

    mesh = init_device_mesh("cpu", (WORLD_SIZE,))
    model = make_model()
    # Adapter layers are their own FSDP units (their LoRA parameters train, the base weights are frozen),
    # then the root picks up what is left.
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    sharded = {n for n, p in model.named_parameters() if type(p).__name__ == "DTensor"}
    train(model, [p for p in model.parameters() if p.requires_grad], rank, WORLD_SIZE)
    adapter_dir = os.path.join(out, "fsdp2_adapter")
    # Saving the live (sharded) parameters is refused with instructions, before anything is written.
    try:
        model.save_pretrained(os.path.join(out, "fsdp2_unsharded_attempt"), is_main_process=(rank == 0))
        sharded_save_error = None
    except ValueError as exc:
        sharded_save_error = str(exc)
    # Every rank takes part in gathering the full state; with cpu_offload only rank 0 receives it.
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    _forbid_writes_off_the_main_process(rank)
    model.save_pretrained(adapter_dir, state_dict=full, is_main_process=(rank == 0))
    dist.barrier()
    trained = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model, state_dict=full).items()} if rank == 0 else None
    torch.save(
        {
            "trained": trained,
            "loaded": _load_on_this_rank(adapter_dir),
            "sharded": sorted(sharded),
            "sharded_save_error": sharded_save_error,
            "full_keys_on_this_rank": len(full),
        },
        os.path.join(out, f"fsdp2_rank{rank}.pt"),
    )


def worker(rank: int, out: str) -> None:
    torch.set_num_threads(1)
    for name, run in (("ddp", ddp), ("fsdp2", fsdp2)):
        dist.init_process_group(
            "gloo", init_method=f"file://{os.path.join(out, f'rendezvous_{name}')}", rank=rank, world_size=WORLD_SIZE
        )
        try:
            run(rank, out)
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    out_dir = os.path.abspath(sys.argv[1])
    mp.start_processes(worker, args=(out_dir,), nprocs=WORLD_SIZE, start_method="fork")
    print("done")
