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


# -- real method packages, several threads, a fresh interpreter ------------------------------------------
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402
from core_method_examples import build, installed_method_packages, layer_methods, output  # noqa: E402

SUPPORT = os.path.join(os.path.dirname(__file__), "_support")


def _run(code: str, pythonpath: list, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_threads_import_and_load_real_methods_in_a_fresh_interpreter(tmp_path):
    """Threads load adapters of different real methods (LoRA, IA3, LoHa, ...) at once, each through
    entry-point discovery, while other threads import the same packages directly; nothing is
    imported beforehand. Every adapter loads with its saved outputs, and nothing deadlocks."""
    methods = [m for m in layer_methods() if m in ("lora", "ia3", "loha", "lokr", "vera", "oft", "boft", "hra", "fourierft")]
    if len(methods) < 3:
        pytest.skip(f"needs at least 3 installed layer methods, found {methods}")
    for name in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, base_state, x = build(name)
        model.save_pretrained(tmp_path / name)
        with torch.no_grad():
            torch.save({"base": base_state, "x": x, "expected": model(x)}, tmp_path / f"{name}.pt")
    packages = {m: installed_method_packages()[m] for m in methods}
    result = _run(
        f"""
        import importlib, sys, threading, warnings
        from concurrent.futures import ThreadPoolExecutor
        warnings.simplefilter("ignore")
        import torch
        from peft_core import PeftModel, registered_methods
        from peft_core.testing import TinyMLP

        packages = {packages!r}
        assert not [p for p in packages.values() if p in sys.modules], "already imported"
        assert not set(packages) & set(registered_methods())
        jobs = [("load", m) for m in packages] * 2 + [("import", m) for m in packages]
        barrier = threading.Barrier(len(jobs))

        def run(job):
            kind, name = job
            data = torch.load({str(tmp_path)!r} + f"/{{name}}.pt")
            barrier.wait()
            if kind == "import":
                importlib.import_module(packages[name])
                return True
            base = TinyMLP()
            base.load_state_dict(data["base"])
            model = PeftModel.from_pretrained(base, {str(tmp_path)!r} + f"/{{name}}")
            with torch.no_grad():
                return torch.equal(model(data["x"]), data["expected"])

        with ThreadPoolExecutor(len(jobs)) as pool:
            results = list(pool.map(run, jobs))
        assert all(results), list(zip(jobs, results))
        assert set(packages) <= set(registered_methods())
        print("ok", len(jobs))
        """,
        [SUPPORT],
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["ok", str(3 * len(methods))]


SLOW_METHOD_SOURCE = "import time\ntime.sleep(1.5)  # a slow package __init__\n" + METHOD_SOURCE


def test_discovery_does_not_deadlock_against_a_direct_import(tmp_path):
    """Thread B imports a method package directly; while its __init__ runs, thread A needs the same
    method through discovery. Discovery must not hold the registry lock while importing (B's
    register call would wait for it while A waits for B's import: a deadlock)."""
    fake_distribution(tmp_path, "peft-scale", "0.1.0", {"scale": "peft_scale"}, {"peft_scale/__init__.py": SLOW_METHOD_SOURCE})
    code = """
        import threading, time
        from peft_core import get_peft_method

        out = {}
        def direct():
            import peft_scale
            out["direct"] = peft_scale.ScaleConfig.__name__
        def discover():
            time.sleep(0.5)  # B is inside peft_scale's __init__ now
            out["discovered"] = get_peft_method("SCALE").name
        threads = [threading.Thread(target=direct), threading.Thread(target=discover)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(out["direct"], out["discovered"])
        """
    try:
        result = _run(code, [tmp_path], timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("discovery deadlocked against a thread importing the method package directly")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ScaleConfig", "scale"]


@pytest.mark.parametrize("method", sorted(installed_method_packages()))
def test_two_peft_models_of_a_real_method_share_no_tensor(method):
    """Same base weights, same config, two PeftModels: no parameter or buffer shares storage
    (methods with shared projections, like VeRA, must not share them across models)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, _, x = build(method, seed=3)
        second, _, _ = build(method, seed=3)
    storages = lambda m: {t.untyped_storage().data_ptr() for t in [*m.parameters(), *m.buffers()] if t.numel()}  # noqa: E731
    assert not storages(first) & storages(second)
    with torch.no_grad():
        before = output(second, x)
        for p in first.parameters():
            p.add_(1.0)
        for b in first.buffers():
            if b.is_floating_point():
                b.add_(1.0)
        assert torch.equal(output(second, x), before)
