"""Point 2 (discovery through entry points) and point 7 (import cost), in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from core_subprocess import METHOD_SOURCE, fake_distribution, run_python

from peft_core import UnknownPeftTypeError, get_peft_method


def test_unknown_peft_type_builds_no_package_name_from_the_file():
    # the peft_type comes from an untrusted adapter_config.json: `pip install peft-<it>` could point at a squatter
    with pytest.raises(UnknownPeftTypeError) as err:
        get_peft_method("NOT_A_METHOD")
    msg = str(err.value)
    assert "'NOT_A_METHOD'" in msg and "peft-not-a-method" not in msg and "does not guess package names" in msg
    assert "Installed methods:" in msg and "toy" in msg


def test_installed_distribution_without_its_entry_point_is_named(tmp_path):
    fake_distribution(tmp_path, "peft-scale", "0.2.0", {}, {"peft_scale/__init__.py": METHOD_SOURCE},
                      requires=("peft-core>=0.1,<0.2", "torch>=2.2"))
    fake_distribution(tmp_path, "other-scale", "1.0.0", {}, {"other_scale/__init__.py": ""})  # not a peft-core plugin
    result = run_python(
        """
        from peft_core import get_peft_method
        get_peft_method("SCALE")
        """,
        [tmp_path],
    )
    assert result.returncode != 0
    assert "peft-scale 0.2.0 is installed but declares no 'peft.methods' entry point for 'scale'" in result.stderr
    assert "other-scale" not in result.stderr


@pytest.mark.parametrize(
    ("entry_point", "modules", "expected"),
    [
        ("peft_gone", {}, "names the module 'peft_gone', which is not installed"),
        ("peft_scale:nothing_here", {"peft_scale/__init__.py": "X = 1\n"}, "names 'nothing_here', which module 'peft_scale' does not define"),
        ("peft_scale", {"peft_scale/__init__.py": "import not_a_dependency_anywhere\n"}, "imports 'not_a_dependency_anywhere', which is not installed"),
        ("peft_scale", {"peft_scale/__init__.py": "from .layer import ScaleLayer\n"}, "its own module 'peft_scale.layer' is missing"),
        ("peft_scale", {"peft_scale/__init__.py": "raise RuntimeError('boom')\n"}, "failed to import: RuntimeError: boom"),
    ],
    ids=["missing-module", "missing-attribute", "missing-dependency", "incomplete-package", "crashing-import"],
)
def test_entry_point_naming_something_missing(tmp_path, entry_point, modules, expected):
    fake_distribution(tmp_path, "peft-scale", "0.1.0", {"scale": entry_point}, modules)
    result = run_python(
        """
        from peft_core import RegistrationError, get_peft_method
        try:
            get_peft_method("SCALE")
        except RegistrationError as exc:
            print(exc)
        """,
        [tmp_path],
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout and "peft-scale 0.1.0" in result.stdout and "'scale'" in result.stdout


def test_installed_methods_lists_distribution_and_version(tmp_path):
    fake_distribution(tmp_path, "peft-scale", "0.3.1", {"scale": "peft_scale"}, {"peft_scale/__init__.py": METHOD_SOURCE})
    result = run_python(
        """
        import json, peft_core
        before = sorted(peft_core.registered_methods())
        rows = [m.__dict__ for m in peft_core.installed_methods()]
        print(json.dumps({"before": before, "rows": rows}))
        """,
        [tmp_path],
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "scale" not in data["before"]  # listing does not import anything
    row = next(r for r in data["rows"] if r["name"] == "scale")
    assert row == {"name": "scale", "distribution": "peft-scale", "version": "0.3.1", "entry_point": "peft_scale", "registered": False}


def test_adapter_of_an_unimported_method_is_loaded_through_its_entry_point(tmp_path):
    fake_distribution(tmp_path, "peft-scale", "0.1.0", {"scale": "peft_scale"}, {"peft_scale/__init__.py": METHOD_SOURCE})
    adapter = tmp_path / "adapter"
    save = run_python(
        f"""
        import torch, peft_scale
        from peft_core import get_peft_model
        torch.manual_seed(0)
        model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(3, 4)), peft_scale.ScaleConfig(target_modules=["0"]))
        model.save_pretrained({str(adapter)!r})
        """,
        [tmp_path],
    )
    assert save.returncode == 0, save.stderr
    load = run_python(
        f"""
        import sys, torch
        from peft_core import PeftModel
        assert "peft_scale" not in sys.modules
        torch.manual_seed(0)
        model = PeftModel.from_pretrained(torch.nn.Sequential(torch.nn.Linear(3, 4)), {str(adapter)!r})
        assert "peft_scale" in sys.modules
        print(type(model.base_model).__name__)
        """,
        [tmp_path],
    )
    assert load.returncode == 0, load.stderr
    assert load.stdout.strip() == "ScaleModel"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("X = 1\n", "registered no method named 'scale'"),
        (METHOD_SOURCE.replace('name="scale"', 'name="scalex"').replace('"SCALE"', '"SCALEX"').replace('"scale_"', '"scalex_"'), "registered no method named 'scale'"),
    ],
    ids=["registers-nothing", "registers-something-else"],
)
def test_entry_point_that_does_not_register_its_method(tmp_path, source, expected):
    fake_distribution(tmp_path, "peft-scale", "0.1.0", {"scale": "peft_scale"}, {"peft_scale/__init__.py": source})
    result = run_python(
        """
        from peft_core import get_peft_method
        get_peft_method("SCALE")
        """,
        [tmp_path],
    )
    assert result.returncode != 0
    assert expected in result.stderr and "peft-scale" in result.stderr and "register_peft_method" in result.stderr


def test_import_peft_core_does_not_import_transformers():
    result = run_python(
        """
        import sys
        import peft_core
        heavy = [m for m in ("transformers", "huggingface_hub", "safetensors", "accelerate") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_prompt_learning_and_discovery_are_imported_on_first_use():
    result = run_python(
        """
        import sys
        import peft_core
        lazy = ["peft_core.tuners.prompt_learning", "peft_core.discovery"]
        print(",".join(m for m in lazy if m in sys.modules))
        from peft_core import PromptLearningConfig, load_all_methods
        from peft_core.tuners.prompt_learning import PromptLearningConfig as direct
        assert PromptLearningConfig is direct and callable(load_all_methods)
        assert "PromptEncoderBase" in dir(peft_core) and peft_core.InstalledMethod.__name__ == "InstalledMethod"
        print(all(m in sys.modules for m in lazy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]  # nothing lazy imported first (empty line), then all of it


PYPROJECT = """
[project]
name = "peft-scale"
version = "0.2.0"
requires-python = ">=3.10"
dependencies = ["peft-core"]

[project.entry-points."peft.methods"]
scale = "peft_scale"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/peft_scale"]
"""


def test_new_method_package_in_a_temp_dir_works_end_to_end(tmp_path):
    """A package with its own pyproject, entry point and one register call; core is not edited.

    It is built and installed into a target folder (not the workspace venv), then a fresh
    interpreter that never imports it by hand finds it through the entry point.
    """
    import shutil

    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required for this test (pip install uv)")
    pkg = tmp_path / "peft-scale"
    (pkg / "src" / "peft_scale").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "src" / "peft_scale" / "__init__.py").write_text(textwrap.dedent(METHOD_SOURCE))
    site = tmp_path / "site"
    install = subprocess.run(
        [uv, "pip", "install", "--no-deps", "--target", str(site), str(pkg), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    adapter = tmp_path / "adapter"
    code = f"""
        import sys, torch
        from peft_core import PeftConfig, PeftModel, get_peft_model, installed_methods
        assert "peft_scale" not in sys.modules
        assert any(m.name == "scale" and m.distribution == "peft-scale" and m.version == "0.2.0" for m in installed_methods())
        torch.manual_seed(0)
        base = torch.nn.Sequential(torch.nn.Linear(3, 4))
        x = torch.randn(2, 3)
        config = PeftConfig.from_peft_type(peft_type="SCALE", target_modules=["0"])  # imports peft_scale
        model = get_peft_model(base, config)
        expected = model(x)
        model.save_pretrained({str(adapter)!r})
        torch.manual_seed(0)
        fresh = torch.nn.Sequential(torch.nn.Linear(3, 4))
        print(torch.equal(expected, fresh(x) * torch.linspace(0.5, 1.5, 4)))
        """
    first = run_python(code, [site])
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "True"
    second = run_python(
        f"""
        import sys, torch
        from peft_core import PeftModel
        torch.manual_seed(0)
        model = PeftModel.from_pretrained(torch.nn.Sequential(torch.nn.Linear(3, 4)), {str(adapter)!r})
        assert "peft_scale" in sys.modules and type(model.base_model).__name__ == "ScaleModel"
        print("ok")
        """,
        [site],
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "ok"
