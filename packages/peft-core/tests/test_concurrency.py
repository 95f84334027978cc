"""Registration and discovery are thread-safe; PeftModels never share adapter state."""

from __future__ import annotations

import copy
import textwrap
from concurrent.futures import ThreadPoolExecutor

import torch
from core_subprocess import METHOD_SOURCE, fake_distribution, run_python

from peft_core import PeftModel, get_peft_model


def test_threads_loading_different_adapters(toy, mlp, tmp_path):
    base_state = {k: v.clone() for k, v in mlp.state_dict().items()}
    x = torch.randn(4, 8)
    expected = {}
    for i in range(6):
        torch.manual_seed(100 + i)
        model = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0", "lin1"], r=1 + i % 3, init_weights=False))
        model.save_pretrained(tmp_path / f"a{i}")
        expected[i] = model(x).detach()

    def load(i: int) -> bool:
        from core_test_models import MLP

        base = MLP()
        base.load_state_dict(base_state)
        loaded = PeftModel.from_pretrained(base, tmp_path / f"a{i}")
        return torch.equal(loaded(x), expected[i])

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(load, list(range(6)) * 2))


def test_two_peft_models_never_share_adapter_state(toy, mlp):
    first = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    second = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    second.add_adapter("extra", toy.ToyConfig(target_modules=["lin1"]))
    assert list(first.peft_config) == ["default"]
    a = first.base_model.model.lin0.toy_A["default"].weight
    b = second.base_model.model.lin0.toy_A["default"].weight
    assert a.data_ptr() != b.data_ptr()
    with torch.no_grad():
        a.add_(1)
    assert not torch.equal(a, b)


def test_concurrent_discovery_registers_once(tmp_path):
    fake_distribution(tmp_path, "peft-scale", "0.1.0", {"scale": "peft_scale"}, {"peft_scale/__init__.py": METHOD_SOURCE})
    result = run_python(
        textwrap.dedent(
            """
            import threading
            from concurrent.futures import ThreadPoolExecutor
            from peft_core import get_peft_method

            barrier = threading.Barrier(8)

            def lookup(_):
                barrier.wait()
                return get_peft_method("SCALE")

            with ThreadPoolExecutor(8) as pool:
                methods = list(pool.map(lookup, range(8)))
            assert len({id(m) for m in methods}) == 1, methods
            print("ok", methods[0].name)
            """
        ),
        [tmp_path],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok scale"
