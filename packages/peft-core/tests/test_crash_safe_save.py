"""A save killed at any instant (or racing another save) never leaves a folder that loads as a mix.

The fault injection runs in one subprocess (`_support/save_fault_harness.py`) that forks a child per
save and SIGKILLs it before each file event or at random instants; see that file for the scenarios.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from peft_core import InconsistentAdapterError, PeftConfig, PeftModel, get_peft_model
from peft_core.atomic_files import remove_stale_temp_files

HARNESS = os.path.join(os.path.dirname(__file__), "_support", "save_fault_harness.py")


@pytest.fixture(scope="module")
def fault_report(tmp_path_factory):
    if not hasattr(os, "fork"):
        pytest.skip("the harness forks a child per save")
    workdir = tmp_path_factory.mktemp("faults")
    proc = subprocess.run(
        [sys.executable, HARNESS, str(workdir), "20261206"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bad(report, predicate):
    return [s for s in report["scenarios"] if predicate(s)]


def test_every_killed_or_racing_save_leaves_old_new_or_a_refusal(fault_report):
    steps = [s for s in fault_report["scenarios"] if s["label"].startswith("kill before")]
    # every file event of a save was a kill point, in each format combination
    assert len(steps) == sum(n + 1 for n in fault_report["events"].values()) and len(steps) >= 25
    assert len(fault_report["scenarios"]) >= len(steps) + 16 + 8
    bad = _bad(fault_report, lambda s: any(v not in s["allowed"] for v in s["state"].values()))
    assert not bad, json.dumps(bad, indent=1)
    # the kills really hit saves part-way: some folders are refused, and both old and new were seen
    seen = {v for s in fault_report["scenarios"] for v in s["state"].values()}
    assert {"old", "new", "refused"} <= seen


def test_two_concurrent_savers_leave_one_complete_save(fault_report):
    racing = [s for s in fault_report["scenarios"] if s.get("same_save")]
    assert racing
    assert not _bad(fault_report, lambda s: s.get("same_save") and len(set(s["state"].values())) != 1)


def test_the_next_save_removes_temp_files_and_wins(fault_report):
    assert any(s["temp_files_before_next_save"] for s in fault_report["scenarios"]), "no kill left a temp file"
    bad = _bad(
        fault_report,
        lambda s: s["temp_files_after_next_save"] or set(s["after_next_save"].values()) != {"new"},
    )
    assert not bad, json.dumps(bad, indent=1)


# -- the mechanism, checked directly --------------------------------------------------------------------
def _model(toy, mlp, scaling=1.0, seed=0):
    torch.manual_seed(seed)
    return get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False, scaling=scaling))


def test_new_weights_next_to_an_old_config_are_refused_naming_the_folder(toy, mlp, tmp_path):
    import copy

    old, new = tmp_path / "old", tmp_path / "new"
    _model(toy, copy.deepcopy(mlp), scaling=1.0).save_pretrained(old)
    _model(toy, copy.deepcopy(mlp), scaling=2.0, seed=1).save_pretrained(new)
    os.replace(new / "adapter_model.safetensors", old / "adapter_model.safetensors")  # a crash between renames
    with pytest.raises(InconsistentAdapterError, match="scaling: 2.0 when the weights were saved, 1.0 now") as err:
        PeftModel.from_pretrained(copy.deepcopy(mlp), old)
    assert str(old) in str(err.value)
    # passing the config explicitly is the way to load an edited config on purpose
    loaded = PeftModel.from_pretrained(copy.deepcopy(mlp), old, config=PeftConfig.from_pretrained(old))
    assert loaded.peft_config["default"].scaling == 1.0


def test_informational_and_unknown_fields_may_be_edited(toy, mlp, tmp_path):
    _model(toy, mlp).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    data.update(base_model_name_or_path="/elsewhere/model", revision="v2", inference_mode=False)
    data["field_from_the_future"] = 1
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="field_from_the_future"):
        PeftModel.from_pretrained(mlp, tmp_path)


def test_hf_peft_reads_our_files_with_the_extra_metadata(toy, tmp_path):
    pytest.importorskip("peft")
    from core_test_models import MLP
    from peft.utils import load_peft_weights as hf_load_peft_weights

    torch.manual_seed(0)
    model = get_peft_model(MLP(), toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    expected = {k: v.clone() for k, v in load_file_from(model, tmp_path / "st").items()}
    with safe_open(tmp_path / "st" / "adapter_model.safetensors", "pt") as fh:
        metadata = fh.metadata()
    assert metadata["format"] == "pt" and "peft_core.adapter_config" in metadata
    hf = hf_load_peft_weights(str(tmp_path / "st"))
    assert hf.keys() == expected.keys() and all(torch.equal(hf[k], expected[k]) for k in hf)
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    hf_bin = hf_load_peft_weights(str(tmp_path / "bin"))
    assert hf_bin.keys() == expected.keys() and all(torch.equal(hf_bin[k], expected[k]) for k in hf_bin)
    assert isinstance(hf_bin, dict) and not any(isinstance(v, str) for v in hf_bin.values())


def load_file_from(model, folder):
    model.save_pretrained(folder)
    return load_file(folder / "adapter_model.safetensors")


def test_bin_files_carry_the_config_too(toy, mlp, tmp_path):
    import copy

    old, new = tmp_path / "old", tmp_path / "new"
    _model(toy, copy.deepcopy(mlp), scaling=1.0).save_pretrained(old, safe_serialization=False)
    _model(toy, copy.deepcopy(mlp), scaling=2.0, seed=1).save_pretrained(new, safe_serialization=False)
    os.replace(new / "adapter_model.bin", old / "adapter_model.bin")
    with pytest.raises(InconsistentAdapterError, match="scaling"):
        PeftModel.from_pretrained(copy.deepcopy(mlp), old)


def test_files_without_the_record_still_load(toy, mlp, tmp_path):
    """Files written by Hugging Face PEFT (metadata `{"format": "pt"}` only) are not checked."""
    import copy

    _model(toy, copy.deepcopy(mlp)).save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"
    save_file(load_file(path), path, metadata={"format": "pt"})
    PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)


def test_config_and_readme_honour_the_umask(toy, mlp, tmp_path):
    old = os.umask(0o022)
    try:
        _model(toy, mlp).save_pretrained(tmp_path)
    finally:
        os.umask(old)
    modes = {n: stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in os.listdir(tmp_path)}
    assert modes == {"README.md": 0o644, "adapter_config.json": 0o644, "adapter_model.safetensors": 0o644}


def test_stale_temp_files_are_removed_only_by_name(tmp_path):
    names = [
        ".adapter_model.safetensors.0123abcd.peft-tmp",
        ".adapter_config.json.k2j4_x9.tmp",  # mkstemp names of earlier versions
        ".README.md.ffff.peft-tmp",
        "notes.tmp",
        ".other.json.abcd.peft-tmp",
        "adapter_model.safetensors",
    ]
    for n in names:
        (tmp_path / n).write_text("x")
    removed = remove_stale_temp_files(str(tmp_path))
    assert sorted(removed) == sorted(names[:3])
    assert sorted(os.listdir(tmp_path)) == sorted(names[3:])
