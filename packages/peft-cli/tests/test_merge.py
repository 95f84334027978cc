"""`peft merge` end to end on a tiny Llama saved to a folder: the merged model's outputs equal the adapted model's."""

from __future__ import annotations

import json

import pytest
import torch


def _adapted_logits(base_dir, adapter_dir, input_ids):
    from peft_core import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    with torch.no_grad():
        return model(input_ids=input_ids).logits


def _merged_logits(out_dir, input_ids):
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    with torch.no_grad():
        return merged(input_ids=input_ids).logits


INPUT_IDS = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(3))


def test_merge_saves_a_model_with_the_adapted_outputs(invoke, base_dir, lora_dir, tmp_path):
    (base_dir / "tokenizer_config.json").write_text("{}")  # companion files travel with the merged model
    out = tmp_path / "merged"
    result = invoke("merge", "--base", str(base_dir), "--adapter", str(lora_dir), "--out", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "merged model (LlamaForCausalLM) saved to" in result.stdout
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert (out / "tokenizer_config.json").is_file()
    assert not (out / "adapter_config.json").exists()

    expected = _adapted_logits(base_dir, lora_dir, INPUT_IDS)
    got = _merged_logits(out, INPUT_IDS)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()
    # and the adapter did something: the merged model is not the base model
    assert not torch.allclose(_merged_logits(base_dir, INPUT_IDS), expected, atol=1e-4)


def test_merge_shards_large_models(invoke, base_dir, lora_dir, tmp_path):
    out = tmp_path / "sharded"
    result = invoke(
        "merge", "--base", str(base_dir), "--adapter", str(lora_dir), "--out", str(out), "--max-shard-size", "40KB"
    )
    assert result.exit_code == 0, result.output
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and all((out / s).is_file() for s in shards)
    assert "merging" in result.stderr  # the progress bar
    expected = _adapted_logits(base_dir, lora_dir, INPUT_IDS)
    assert torch.allclose(_merged_logits(out, INPUT_IDS), expected, atol=1e-5, rtol=0)


def test_merge_picks_the_auto_class_from_the_task_type():
    from peft_cli.merge import model_class_name

    assert model_class_name({"task_type": "CAUSAL_LM"}) == "AutoModelForCausalLM"
    assert model_class_name({"task_type": "SEQ_CLS"}) == "AutoModelForSequenceClassification"
    assert model_class_name({"task_type": None}) == "AutoModel"
    mapping = {"base_model_class": "LlamaModel", "parent_library": "transformers.models.llama.modeling_llama"}
    assert model_class_name({"task_type": None, "auto_mapping": mapping}) == "LlamaModel"


def test_merge_user_errors(invoke, base_dir, lora_dir, tmp_path):
    def err(*args):
        result = invoke("merge", *args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1, result.output
        return lines[0]

    out = str(tmp_path / "out")
    assert "is not a folder" in err("--base", str(tmp_path / "nope"), "--adapter", str(lora_dir), "--out", out)
    assert "has no config.json" in err("--base", str(lora_dir), "--adapter", str(lora_dir), "--out", out)
    assert "has no adapter_config.json" in err("--base", str(base_dir), "--adapter", str(base_dir), "--out", out)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert "is not empty" in err("--base", str(base_dir), "--adapter", str(lora_dir), "--out", str(busy))

    prompt = tmp_path / "prompt"
    prompt.mkdir()
    (prompt / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "token_dim": 32,
         "num_transformer_submodules": 1, "num_attention_heads": 4, "num_layers": 2}
    ))
    from peft_core import installed_methods

    if "prompt_tuning" in {m.name for m in installed_methods()}:
        assert "nothing to merge" in err("--base", str(base_dir), "--adapter", str(prompt), "--out", out)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "adapter_config.json").write_text(json.dumps({"peft_type": "NOT_A_METHOD", "task_type": "CAUSAL_LM"}))
    line = err("--base", str(base_dir), "--adapter", str(unknown), "--out", out)
    assert "cannot merge a NOT_A_METHOD adapter" in line and "no installed package provides" in line
    assert "peft-not-a-method" not in line
