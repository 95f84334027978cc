"""`PeftModel.push_to_hub` / `PeftConfig.push_to_hub` upload the adapter only.

huggingface_hub is mocked at its API calls (`HfApi.create_repo`, `create_branch`, `upload_folder`,
each of which would talk to the Hub): the fake reads the folder that would have been uploaded.
Nothing is sent anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from safetensors.torch import load

from peft_core import get_peft_model


class FakeHub:
    """Records what HfApi would send; `commits` holds {path_in_repo: bytes} per upload."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.repos: list[dict] = []
        self.branches: list[str] = []
        self.commits: list[dict] = []
        monkeypatch.setattr(HfApi, "create_repo", self._create_repo)
        monkeypatch.setattr(HfApi, "create_branch", self._create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", self._upload_folder)

    def _create_repo(self, repo_id, **kwargs):
        self.repos.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def _create_branch(self, repo_id, *, branch, **kwargs):
        self.branches.append(branch)

    def _upload_folder(self, *, repo_id, folder_path, commit_message, **kwargs):
        root = Path(folder_path)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        self.commits.append({"repo_id": repo_id, "message": commit_message, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/0",
            commit_message=commit_message,
            commit_description="",
            oid="0" * 40,
        )


@pytest.fixture
def hub(monkeypatch):
    return FakeHub(monkeypatch)


def test_push_to_hub_uploads_adapter_files_only(hub, toy, tiny_llama, monkeypatch):
    base_push = []
    monkeypatch.setattr(type(tiny_llama), "push_to_hub", lambda self, *a, **k: base_push.append(a), raising=False)
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))

    info = model.push_to_hub("me/tiny-adapter", private=True, commit_message="adapter v1")

    assert base_push == [], "the base model's push_to_hub (full weights) must never run"
    assert hub.repos == [{"repo_id": "me/tiny-adapter", "private": True, "exist_ok": True, "repo_type": "model"}]
    (commit,) = hub.commits
    assert commit["message"] == "adapter v1" and info.commit_message == "adapter v1"
    assert set(commit["files"]) == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    tensors = load(commit["files"]["adapter_model.safetensors"])
    assert tensors and all(".toy_" in key for key in tensors), sorted(tensors)
    adapter_numel = sum(t.numel() for t in tensors.values())
    assert adapter_numel < sum(p.numel() for p in model.get_base_model().parameters()) / 10
    assert b"library_name: peft" in commit["files"]["README.md"]


def test_push_to_hub_revision_selected_adapters_and_tags(hub, toy, tiny_llama):
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"]))
    model.add_adapter("other", toy.ToyConfig(target_modules=["v_proj"]))
    model.push_to_hub("me/two", revision="dev", selected_adapters=["other"], tags=["my-tag"])
    assert hub.branches == ["dev"]
    (commit,) = hub.commits
    assert commit["revision"] == "dev"
    assert set(commit["files"]) == {"other/adapter_config.json", "other/adapter_model.safetensors", "README.md"}
    assert b"my-tag" in commit["files"]["README.md"]


def test_push_to_hub_create_pr_makes_no_branch(hub, toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    model.push_to_hub("me/pr", revision="main", create_pr=True)
    assert hub.branches == []
    assert hub.commits[0]["create_pr"] is True


def test_config_push_to_hub_uploads_the_config(hub, toy):
    config = toy.ToyConfig(target_modules=["lin0"], r=3)
    config.push_to_hub("me/config-only")
    (commit,) = hub.commits
    assert set(commit["files"]) == {"adapter_config.json"}
    assert b'"r": 3' in commit["files"]["adapter_config.json"]


def test_push_to_hub_refuses_unknown_commit_options_before_uploading(hub, toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.raises(TypeError, match="commit_mesage"):
        model.push_to_hub("me/typo", commit_mesage="typo")
    with pytest.raises(TypeError, match="privte"):
        model.peft_config["default"].push_to_hub("me/typo", privte=True)
    assert hub.commits == []


def test_create_or_update_model_card_keeps_user_text(toy, tiny_llama, tmp_path):
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], task_type="CAUSAL_LM"))
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n\n# My adapter\n\nTrained on my data.\n")
    model.create_or_update_model_card(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "Trained on my data." in text and "license: mit" in text
    assert "library_name: peft" in text and "pipeline_tag: text-generation" in text
    assert "- toy" in text and "- transformers" in text
    model.create_or_update_model_card(tmp_path)  # idempotent
    assert (tmp_path / "README.md").read_text() == text
