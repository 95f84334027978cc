"""The throwaway workspaces of the negative proofs (tests/test_workspace_negative.py).

Each scenario function writes a uv workspace with one fault into a `FakeWorkspace` (packages on
PYTHONPATH, "installed" through fake `<name>-0.1.0.dist-info/` folders with METADATA and
entry_points.txt) and returns the checks to run. `run_scenarios` runs every scenario's checks in
its own fresh interpreter (`FakeWorkspace.run`), two at a time; tests/conftest.py starts it in the
background as soon as a selected test needs the results.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import _workspace_checks as wc

CORE = "peft-core>=0.1,<0.2"
ALL_RUNTIME_CHECKS = ["cycles", "import_orders", "layering", "deptry", "dependency_graph", "registration", "state_dicts"]
# The real workspace's packages are installed in this environment too: in a throwaway workspace
# they are "foreign", which is not what these scenarios test.
NO_FOREIGN = {"registration": {"foreign": False}}


def alpha(fake: wc.FakeWorkspace, **kwargs: Any) -> None:
    """A correct method package: method `alpha`, prefix `alpha_`."""
    fake.add("peft-alpha", {"__init__.py": wc.method_source("alpha")}, entry_points={"alpha": "peft_alpha"}, **kwargs)


# -- scenarios: (workspace writer, checks) ---------------------------------------------------------


def clean(fake: wc.FakeWorkspace) -> list[str]:
    alpha(fake)
    # beta builds on alpha: declares it, imports it first, and deliberately saves alpha's parameter names
    fake.add(
        "peft-beta",
        {
            "__init__.py": wc.method_source(
                "beta", prefix="alpha_", shares_prefix_with="alpha", preamble="import peft_alpha  # noqa: F401\n"
            )
        },
        dependencies=[CORE, "torch>=2.2", "peft-alpha>=0.1,<0.2"],
        entry_points={"beta": "peft_beta"},
    )
    fake.add(
        "peft-gamma",
        {"__init__.py": wc.method_source("gamma"), "util.py": "from peft_core import PeftConfig\n\nBASE = PeftConfig\n"},
        entry_points={"gamma": "peft_gamma"},
    )
    # peft-core's test-only `toy` method (module- and parameter-backed containers), as a package
    toy = wc.REPO_ROOT / "packages" / "peft-core" / "tests" / "_support" / "peft_toy" / "__init__.py"
    if toy.is_file():
        fake.add("peft-toy", {"__init__.py": toy.read_text()}, entry_points={"toy": "peft_toy"})
    # a tool package (like peft-cli): no method, a `python -m` entry, an optional extra on a method package
    fake.add(
        "peft-tool",
        {
            "__init__.py": "import peft_core\n\n\ndef main():\n    try:\n        import peft_alpha  # noqa: F401\n"
            "    except ImportError:\n        return 1\n    return 0\n",
            "__main__.py": "from peft_tool import main\n\nraise SystemExit(main())\n",
        },
        dependencies=[CORE],
        pyproject_extra='\n[project.optional-dependencies]\nalpha = ["peft-alpha>=0.1,<0.2"]\n',
    )
    return ALL_RUNTIME_CHECKS + ["package_files"]


def import_cycle(fake: wc.FakeWorkspace) -> list[str]:
    # `alpha` first works (beta's plain `import` tolerates a half-initialised alpha); `beta` first fails.
    fake.add(
        "peft-cyc",
        {
            "__init__.py": "",
            "alpha.py": "from .beta import B\n\n\nclass A:\n    pass\n",
            "beta.py": "import peft_cyc.alpha\n\n\nclass B:\n    pass\n",
        },
        dependencies=[],
    )
    return ["cycles", "import_orders"]


def init_cycle(fake: wc.FakeWorkspace) -> list[str]:
    # the classic: a submodule imports a name from its own package's __init__, which imports it first
    fake.add(
        "peft-init",
        {
            "__init__.py": "from .model import Model\nfrom .config import Config\n",
            "config.py": "class Config:\n    pass\n",
            "model.py": "from peft_init import Config\n\n\nclass Model:\n    config = Config\n",
        },
        dependencies=[],
    )
    return ["cycles", "import_orders"]


def undeclared_import(fake: wc.FakeWorkspace) -> list[str]:
    # tqdm is installed here (peft-core depends on it) but peft-undecl doesn't declare it.
    fake.add(
        "peft-undecl",
        {"__init__.py": "import tqdm\n\n" + wc.method_source("undecl")},
        entry_points={"undecl": "peft_undecl"},
        dependencies=[CORE, "torch>=2"],
    )
    return ["deptry", "layering"]


def undeclared_method_import(fake: wc.FakeWorkspace) -> list[str]:
    alpha(fake, dependencies=[CORE, "torch>=2"])
    fake.add(
        "peft-beta",
        {
            "__init__.py": wc.method_source("beta"),
            "helpers.py": "def scale():\n    from peft_alpha import AlphaLayer  # deferred, still undeclared\n    return AlphaLayer\n",
        },
        entry_points={"beta": "peft_beta"},
        dependencies=[CORE, "torch>=2"],
    )
    return ["layering", "deptry"]


def duplicate_name(fake: wc.FakeWorkspace) -> list[str]:
    fake.add("peft-one", {"__init__.py": wc.method_source("same", prefix="one_")}, entry_points={"same": "peft_one"})
    fake.add("peft-two", {"__init__.py": wc.method_source("same", prefix="two_")}, entry_points={"same": "peft_two"})
    return ["registration"]


def undeclared_shared_prefix(fake: wc.FakeWorkspace) -> list[str]:
    alpha(fake)
    fake.add("peft-gamma", {"__init__.py": wc.method_source("gamma", prefix="alpha_")}, entry_points={"gamma": "peft_gamma"})
    return ["registration"]


def registers_nothing(fake: wc.FakeWorkspace) -> list[str]:
    fake.add("peft-empty", {"__init__.py": '"""Forgot to register."""\n'}, entry_points={"empty": "peft_empty"})
    return ["registration"]


def registers_other(fake: wc.FakeWorkspace) -> list[str]:
    fake.add("peft-other", {"__init__.py": wc.method_source("different")}, entry_points={"other": "peft_other"})
    return ["registration"]


def stale_entry_points(fake: wc.FakeWorkspace) -> list[str]:
    fake.add(
        "peft-alpha",
        {"__init__.py": wc.method_source("alpha")},
        entry_points={"alpha": "peft_alpha"},
        installed_entry_points={"alpha_old": "peft_alpha"},
    )
    return ["registration"]


def registered_twice(fake: wc.FakeWorkspace) -> list[str]:
    fake.add(
        "peft-twice",
        {
            "__init__.py": wc.method_source("twice") + "\nfrom . import again  # noqa: E402,F401\n",
            "again.py": "from peft_twice import TwiceConfig, TwiceModel\nfrom peft_core import register_peft_method\n\n"
            "register_peft_method(name='twice', config_cls=TwiceConfig, model_cls=TwiceModel)\n",
        },
        entry_points={"twice": "peft_twice"},
    )
    return ["registration"]


def dependency_cycle(fake: wc.FakeWorkspace) -> list[str]:
    fake.add("peft-alpha", {"__init__.py": ""}, dependencies=[CORE, "peft-beta>=0.1,<0.2"])
    fake.add("peft-beta", {"__init__.py": ""}, dependencies=[CORE, "peft-alpha>=0.1,<0.2"])
    return ["dependency_graph"]


def core_imports_method(fake: wc.FakeWorkspace) -> list[str]:
    # a fake core (only analysed statically: grimp reads it, nothing imports it)
    fake.add(
        "peft-core",
        {"__init__.py": "", "discovery.py": "def load():\n    import peft_alpha\n    return peft_alpha\n"},
        dependencies=[],
    )
    fake.add("peft-alpha", {"__init__.py": "import peft_core\n"})
    return ["layering"]


LEAKY_MODEL = """
def extra_tensors_to_save(self, adapter_name):
    # the classic bug: select tensors by matching the prefix against key strings
    return {k: v for k, v in self.model.state_dict().items() if self.prefix in k and ".base_layer." not in k}
"""


def leaky_state_dict(fake: wc.FakeWorkspace) -> list[str]:
    # prefix "ft_" is contained in the probe model's decoy "boft_y" and in "oft_z"
    fake.add("peft-ft", {"__init__.py": wc.method_source("ft", extra_model=LEAKY_MODEL)}, entry_points={"ft": "peft_ft"})
    return ["state_dicts"]


SCENARIOS: dict[str, Callable[[wc.FakeWorkspace], list[str]]] = {
    f.__name__: f
    for f in (
        clean,
        import_cycle,
        init_cycle,
        undeclared_import,
        undeclared_method_import,
        duplicate_name,
        undeclared_shared_prefix,
        registers_nothing,
        registers_other,
        stale_entry_points,
        registered_twice,
        dependency_cycle,
        core_imports_method,
        leaky_state_dict,
    )
}


def run_scenario(name: str, base: Path) -> tuple[wc.FakeWorkspace, list[wc.Problem]]:
    """Write scenario `name` under `base` and return its problems (every check it runs, flattened)."""
    fake = wc.FakeWorkspace(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base)))
    checks = SCENARIOS[name](fake)
    runtime = [c for c in checks if c != "package_files"]
    report = fake.run(runtime, options=NO_FOREIGN)
    problems = [p for c in runtime for p in report["problems"][c]]
    if "package_files" in checks:
        problems += wc.check_package_files(wc.discover_workspace(fake.root))
    return fake, problems


def run_scenarios(base: Path, workers: int = 2) -> dict[str, tuple[wc.FakeWorkspace, list[wc.Problem]]]:
    """Every scenario, `workers` at a time: name -> (workspace, problems)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_scenario, name, base) for name in SCENARIOS}
        return {name: future.result() for name, future in futures.items()}
