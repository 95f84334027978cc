"""The documentation site builds strictly, shows every package, and its runnable code runs.

- `mkdocs build --strict` (mkdocs-material + mkdocstrings, from the `docs` dependency group, which the
  default `dev` group includes) into a temp folder: a few seconds, so it runs in the default suite;
- every `packages/*/README.md` becomes a page without any docs edit (docs/hooks/packages.py), also for a
  package that does not exist yet (a throwaway root);
- the Python code of the quickstart page runs as written.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "hooks" / "packages.py"


def _hook_module():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("_peft_docs_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for readme in sorted((ROOT / "packages").glob("*/README.md")):
        page = site / "packages" / readme.parent.name / "index.html"
        assert page.is_file(), f"no docs page for {readme.parent.name}"
    index = (site / "packages" / "index.html").read_text(encoding="utf-8")
    assert "peft-lora" in index and "peft-cli" in index
    tutorial = (site / "write-a-method" / "index.html").read_text(encoding="utf-8")
    assert "ScaledLowrankLinear" in tutorial and "ConformanceTests" in tutorial and "run_conformance" in tutorial
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "register_peft_method" in api and "from_pretrained" in api
    assert (site / "releasing" / "index.html").is_file()


def _new_method_module():
    spec = importlib.util.spec_from_file_location("_peft_new_method", ROOT / "tools" / "new_method.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tutorial_shows_the_scaffolders_files_and_every_check():
    """write-a-method.md and publish-a-method.md are plain files: their listings are the scaffolder's output
    (fix: `uv run tools/new_method.py --sync-docs`), and the tutorial's table lists every check of the kit."""
    new_method = _new_method_module()
    page = (ROOT / "docs" / "write-a-method.md").read_text(encoding="utf-8")
    files = new_method.tutorial_files(ROOT)
    assert new_method.synced_tutorial(page, files) == page, "run `uv run tools/new_method.py --sync-docs`"
    shown = set(re.findall(r"<!-- scaffold: (\S+) -->", page))
    assert shown == set(files) - {"README.md", "CHANGELOG.md", "src/peft_scaled_lowrank/py.typed"}
    publishing = (ROOT / "docs" / "publish-a-method.md").read_text(encoding="utf-8")
    outside = new_method.tutorial_files(ROOT, outside=True)
    assert new_method.synced_tutorial(publishing, outside, outside=True) == publishing, (
        "run `uv run tools/new_method.py --sync-docs`"
    )
    assert "[tool.uv.sources]" not in outside["pyproject.toml"]  # the page shows a project of its own
    from peft_core.testing import CHECKS

    for name in CHECKS:
        assert f"| `{name}` |" in page, f"check {name!r} is not described in docs/write-a-method.md"


def test_a_new_package_gets_a_page_without_docs_edits(tmp_path):
    hook = _hook_module()
    for folder, extra in (("peft-core", ""), ("peft-newthing", '[project.entry-points."peft.methods"]\nnewthing = "peft_newthing"\n')):
        pkg = tmp_path / "packages" / folder
        pkg.mkdir(parents=True)
        (pkg / "pyproject.toml").write_text(
            f'[project]\nname = "{folder}"\nversion = "0.3.0"\ndescription = "about {folder}"\n{extra}'
        )
        (pkg / "README.md").write_text(
            f"# {folder}\n\nSee [core](../peft-core), [the quickstart](../../docs/quickstart.md), "
            "[a file](src/x.py) and [HF](https://github.com/huggingface/peft).\n"
        )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "quickstart.md").write_text("# q\n")
    hook.ROOT = tmp_path
    packages = hook._packages()
    assert [p["dist"] for p in packages] == ["peft-core", "peft-newthing"]
    assert packages[1]["methods"] == ["newthing"]
    config = {"extra": {}, "nav": [{"Home": "index.md"}, {"Packages": ["packages/index.md"]}]}
    hook.on_config(config)
    assert config["nav"][1]["Packages"][1:] == [{"peft-core": "packages/peft-core.md"}, {"peft-newthing": "packages/peft-newthing.md"}]
    assert "| [peft-newthing](peft-newthing.md) | 0.3.0 | `newthing` | about peft-newthing |" in hook._index_page(packages)
    text = hook._rewrite_links((tmp_path / "packages" / "peft-newthing" / "README.md").read_text(), "peft-newthing", {"peft-core", "peft-newthing"})
    assert "[core](peft-core.md)" in text and "[the quickstart](../quickstart.md)" in text
    assert "a file" in text and "(src/x.py)" not in text and "(https://github.com/huggingface/peft)" in text


def test_quickstart_page_code_runs(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("peft_lora")
    page = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert blocks, "the quickstart page has no Python code"
    monkeypatch.chdir(tmp_path)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for code in blocks:
            exec(compile(code, "docs/quickstart.md", "exec"), {"__name__": "__docs__"})
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "my-adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "merged-model" / "config.json").is_file()


def test_qlora_page_code_runs(tmp_path):
    """The page's ten lines, on a tiny Llama checkpoint written here (as `model_id`), quantized to NF4 on CPU."""
    pytest.importorskip("bitsandbytes")
    transformers = pytest.importorskip("transformers")
    import torch

    page = (ROOT / "docs" / "qlora.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", page, re.DOTALL)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    scope = {"__name__": "__docs__", "model_id": str(tmp_path / "tiny")}
    exec(compile(code, "docs/qlora.md", "exec"), scope)
    model = scope["model"]
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == "Linear4bit" and type(q_proj.get_base_layer()).__module__.startswith("bitsandbytes")
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    ids = torch.randint(0, 96, (2, 8))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert q_proj.lora_A["default"].weight.grad is not None


def test_serving_page_code_runs(tmp_path, monkeypatch):
    """The serving page's examples run in order in one namespace. `torch.compile` is replaced by the identity
    here (compiling costs a minute); peft-lora's test_hotswap_compile.py compiles for real with inductor."""
    pytest.importorskip("transformers")
    for package in ("peft_lora", "peft_loha", "peft_lokr"):
        pytest.importorskip(package)
    import torch

    page = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 5, "the serving page lost its examples"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)
    namespace = {"__name__": "__docs__"}
    for code in blocks:
        exec(compile(code, "docs/serving.md", "exec"), namespace)
    assert namespace["report"].max_relative_error < 1e-5  # rank 16 covers a rank-4 LoHa's deltas (rank <= 16)
    assert set(namespace["result"].report.modules) == {f"model.layers.{i}.self_attn.{m}" for i in (0, 1) for m in ("q_proj", "v_proj")}


def test_hook_reference_covers_every_hook_and_base_field():
    """docs/api/hooks.md names every public member of the classes a method subclasses, the private hooks core
    calls, and every PeftConfig base field: a new hook or field fails here until it is documented."""
    import dataclasses

    from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, PromptEncoderBase, PromptLearningTuner

    page = (ROOT / "docs" / "api" / "hooks.md").read_text(encoding="utf-8")
    private_hooks = {
        BaseTuner: {
            "_create_and_replace", "_prepare_adapter_config", "_check_new_adapter_config", "_mark_extra_trainable",
            "_before_injection", "_after_injection", "_check_merge_request",
        },
        BaseTunerLayer: {"_move_adapter_to_device_of_base_layer", "_unmerge_if_disabled"},
        PromptLearningTuner: {"_create_prompt_encoder", "_prepare_prompt_learning_config"},
        PromptEncoderBase: set(),
    }
    missing = []
    for cls, hooks in private_hooks.items():
        public = {n for n in vars(cls) if not n.startswith("_")}
        if cls is PromptLearningTuner:  # its own additions only; the rest is BaseTuner's
            public = {"injects_cache"}
        for name in sorted(public | hooks):
            assert hasattr(cls, name), f"{cls.__name__}.{name} is listed as a hook but does not exist"
            if not re.search(rf"[`.]{re.escape(name)}\b", page):
                missing.append(f"{cls.__name__}.{name}")
    for f in dataclasses.fields(PeftConfig):
        if f"| `{f.name}` |" not in page:
            missing.append(f"PeftConfig.{f.name}")
    from peft_core.registry import MODEL_CLASS_FACTS

    for name in MODEL_CLASS_FACTS:  # the model-class attributes register_peft_method reads
        if f"| `{name}` |" not in page:
            missing.append(f"BaseTuner.{name} (registration)")
    for name in ("not_implemented", "set_fields", "is_prompt_learning", "__post_init__"):
        if f"`{name}`" not in page:
            missing.append(f"PeftConfig.{name}")
    assert not missing, f"document these in docs/api/hooks.md: {missing}"
