"""Release the real packages through a real package index, the way a maintainer and a user would
(`uv run pytest -m release tests`; .ci/run runs it).

A pypiserver (installed from PyPI into the dev environment) serves a temp folder. In a throwaway git
copy of this workspace: first releases of peft-core, peft-trainable-tokens, peft-lora and peft-ia3 (bump, commit, build,
tag, `release.py publish`, which runs `uv publish`). Then, as a user, in a fresh venv: `uv pip install
peft-lora` with the local index first (torch and the rest from the normal index, through uv's
cache): exactly peft-lora, peft-trainable-tokens and peft-core of ours come in, and an adapter saves and reloads. Then a
patch release of peft-lora alone: upgrading it leaves peft-ia3 and peft-core where they were, and
the adapter saved with the old version reloads identically. Then a patch of peft-core:
`lowest-core peft-ia3 --index` resolves peft-ia3's range against the index and runs its tests
against the older peft-core 0.1.0 it admits.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _release_workspace import REPO, _env, add_entry, commit_all, git, release

pytestmark = pytest.mark.release

OURS = {p.name for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").is_file()}

# Runs in the user's venv: LoRA on a small module, save (or load) an adapter, print the outputs.
ROUND_TRIP = r"""
import json, sys, torch
from torch import nn
from peft_core import PeftModel, get_peft_model
from peft_lora import LoraConfig

def base():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))

mode, folder = sys.argv[1:3]
x = torch.arange(16, dtype=torch.float32).reshape(2, 8) / 16
if mode == "save":
    model = get_peft_model(base(), LoraConfig(target_modules=["0", "2"], r=2, init_lora_weights=False))
    model.save_pretrained(folder)
    reloaded = PeftModel.from_pretrained(base(), folder)
    assert torch.equal(model(x), reloaded(x)), "outputs differ after save/load"
else:
    model = PeftModel.from_pretrained(base(), folder)
print(json.dumps(model(x).tolist()))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def index(tmp_path: Path):
    """A pypiserver on localhost serving tmp_path/index; yields its base URL."""
    packages = tmp_path / "index"
    packages.mkdir()
    port = _free_port()
    log = (tmp_path / "pypiserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
         "-a", ".", "-P", ".", "--disable-fallback", str(packages)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/simple/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"pypiserver exited: {(tmp_path / 'pypiserver.log').read_text()}")
                time.sleep(0.2)
        else:
            pytest.fail("pypiserver did not answer within 20 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def copy_workspace(dest: Path) -> Path:
    """The working tree (tracked and untracked, not ignored files) as a fresh one-commit repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "workspace as of the test run")
    return dest


def ok(root: Path, *args: str) -> str:
    proc = release(root, *args)
    assert proc.returncode == 0, f"release.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def release_packages(ws: Path, url: str, dists: list[str], part: str, message: str) -> None:
    """bump, commit, build (verify), tag, publish: the steps of docs/releasing.md."""
    for dist in dists:
        ok(ws, "bump", dist, part, "--date", "2026-01-02")
    commit_all(ws, message)
    ok(ws, "build", *dists)  # verified in parallel
    for dist in dists:
        ok(ws, "tag", dist)
        ok(ws, "publish", dist, "--publish-url", f"{url}/", "--check-url", f"{url}/simple/")


def uv(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["uv", *args], cwd=cwd, env=_env(), text=True, capture_output=True)
    assert proc.returncode == 0, f"uv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def ours_installed(py: Path, cwd: Path) -> dict[str, str]:
    listed = json.loads(uv("pip", "list", "--python", str(py), "--format", "json", cwd=cwd))
    return {p["name"]: p["version"] for p in listed if p["name"] in OURS or p["name"] == "peft"}


def run_py(py: Path, cwd: Path, *args: str) -> str:
    proc = subprocess.run([str(py), "-I", *args], cwd=cwd, env=_env(), text=True, capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_release_through_a_package_index(index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pypiserver runs without authentication (-a . -P .), but uv publish wants credentials
    monkeypatch.setenv("UV_PUBLISH_USERNAME", "release-test")
    monkeypatch.setenv("UV_PUBLISH_PASSWORD", "unused")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    ws = copy_workspace(tmp_path / "ws")
    simple = f"{index}/simple/"

    # first releases of the core, two methods and what peft-lora depends on (peft-trainable-tokens, for
    # `trainable_token_indices`)
    release_packages(ws, index, ["peft-core", "peft-trainable-tokens", "peft-lora", "peft-ia3"], "current",
                     "Release 0.1.0s")
    timings["first releases (4 builds)"] = time.perf_counter() - start
    published = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert published == sorted(f"{m}-0.1.0{ext}" for m in ("peft_core", "peft_ia3", "peft_lora", "peft_trainable_tokens")
                               for ext in ("-py3-none-any.whl", ".tar.gz"))

    # a user installs peft-lora: our index first (uv's first-index strategy), torch from the default one
    t = time.perf_counter()
    user = tmp_path / "user"
    uv("venv", "--quiet", str(user / "venv"), "--python", sys.executable, cwd=tmp_path)
    py = user / "venv" / "bin" / "python"
    uv("pip", "install", "--python", str(py), "--index", simple, "peft-lora", cwd=user)
    timings["user venv + install"] = time.perf_counter() - t
    assert ours_installed(py, user) == {"peft-core": "0.1.0", "peft-lora": "0.1.0", "peft-trainable-tokens": "0.1.0"}
    saved = json.loads(run_py(py, user, "-c", ROUND_TRIP, "save", str(user / "adapter")))

    uv("pip", "install", "--python", str(py), "--index", simple, "peft-ia3", cwd=user)
    assert ours_installed(py, user) == {"peft-core": "0.1.0", "peft-lora": "0.1.0", "peft-ia3": "0.1.0",
                                        "peft-trainable-tokens": "0.1.0"}

    # a patch of peft-lora alone
    t = time.perf_counter()
    init = ws / "packages/peft-lora/src/peft_lora/__init__.py"
    init.write_text(init.read_text() + "\n# patched in the release test\n")
    add_entry(ws / "packages/peft-lora", "Fixed", "A fix released on its own.")
    commit_all(ws, "peft-lora: a fix")
    plan = json.loads(release(ws, "plan", "--json").stdout)
    pending = {p["name"]: p["next_version"] for p in plan["packages"] if p["state"] == "needs release"}
    assert pending == {"peft-lora": "0.1.1"}
    release_packages(ws, index, ["peft-lora"], "patch", "Release peft-lora 0.1.1")
    timings["patch release of peft-lora"] = time.perf_counter() - t
    uv("pip", "install", "--python", str(py), "--index", simple, "--upgrade-package", "peft-lora", "peft-lora",
       cwd=user)
    assert ours_installed(py, user) == {"peft-core": "0.1.0", "peft-lora": "0.1.1", "peft-ia3": "0.1.0",
                                        "peft-trainable-tokens": "0.1.0"}
    assert json.loads(run_py(py, user, "-c", ROUND_TRIP, "load", str(user / "adapter"))) == saved

    # a patch of peft-core: peft-ia3's range admits both; its lowest end is still tested
    t = time.perf_counter()
    core_init = ws / "packages/peft-core/src/peft_core/_plugin_api.py"
    core_init.write_text(core_init.read_text() + "\n# patched in the release test\n")
    add_entry(ws / "packages/peft-core", "Fixed", "A core fix.")
    commit_all(ws, "peft-core: a fix")
    release_packages(ws, index, ["peft-core"], "patch", "Release peft-core 0.1.1")
    timings["patch release of peft-core"] = time.perf_counter() - t
    uv("pip", "install", "--python", str(py), "--index", simple, "--upgrade-package", "peft-core", "peft-core",
       cwd=user)
    assert ours_installed(py, user)["peft-core"] == "0.1.1"

    t = time.perf_counter()
    proc = release(ws, "lowest-core", "peft-ia3", "--index", simple, "--pytest-arg=-q", "--pytest-arg=-x")
    timings["lowest-core peft-ia3 --index"] = time.perf_counter() - t
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"tests passed against peft-core 0.1.0 (from {simple})" in proc.stdout
    timings["total"] = time.perf_counter() - start
    print("\n" + "\n".join(f"{k}: {v:.0f} s" for k, v in timings.items()))
