"""transformers 5.24 demands peft >= 0.22.0 for its adapter methods: it refuses Hugging Face PEFT 0.21.2 and
peft-compat (API level 0.21.2) with the same error. Its Trainer and TRL don't check (test_trainer.py, test_trl.py)."""

from __future__ import annotations

import pytest
import transformers
from packaging.version import Version

from compat_helpers import run_python

SNIPPET = """
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig
model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=1))
try:
    model.add_adapter(LoraConfig(target_modules=["q_proj"]))
    print("ACCEPTED")
except ValueError as exc:
    print("REFUSED", exc)
"""


def test_same_answer_as_hugging_face_peft(hf_python, tmp_path):
    from transformers.integrations.peft import MIN_PEFT_VERSION

    script = tmp_path / "gate.py"
    script.write_text(SNIPPET)
    ours = run_python(__import__("sys").executable, script, cwd=tmp_path).stdout.strip().splitlines()[-1]
    hf = run_python(hf_python, script, cwd=tmp_path).stdout.strip().splitlines()[-1]
    if Version(MIN_PEFT_VERSION) > Version("0.21.2"):
        assert ours.startswith("REFUSED") and MIN_PEFT_VERSION in ours
    else:
        assert ours == "ACCEPTED"
    hf_version = __import__("subprocess").run(
        [hf_python, "-c", "import transformers; print(transformers.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    if hf_version != transformers.__version__:
        pytest.fail(f"the reference interpreter has transformers {hf_version}, this one {transformers.__version__}")
    assert ours == hf
