"""Prompt tuning on a causal LM: virtual tokens, training, save, load, generate."""

import sys

import torch
from transformers import AutoModelForCausalLM

from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4, prompt_tuning_init=PromptTuningInit.RANDOM)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path), config)
ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(6))
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
loss = model(input_ids=ids, labels=ids).loss
loss.backward()
optimizer.step()
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
    generated_cached = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False)
    generated = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, use_cache=False)
model.save_pretrained(f"{out}/adapter")
loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
torch.save({"loss": loss.detach(), "logits": logits, "generated": generated, "generated_cached": generated_cached, "reloaded": reloaded,
            "trainable": model.get_nb_trainable_parameters()[0]}, f"{out}/results.pt")
