"""Prompt tuning on a causal LM: virtual tokens, training, save, load, generate."""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

out = sys.argv[1]


def base():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))


torch.manual_seed(1)
config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4, prompt_tuning_init=PromptTuningInit.RANDOM)
model = get_peft_model(base(), config)
ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(6))
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
loss = model(input_ids=ids, labels=ids).loss
loss.backward()
optimizer.step()
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
    generated_cached = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    generated = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False, use_cache=False)
model.save_pretrained(f"{out}/adapter")
loaded = PeftModel.from_pretrained(base(), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
torch.save({"loss": loss.detach(), "logits": logits, "generated": generated, "generated_cached": generated_cached, "reloaded": reloaded,
            "trainable": model.get_nb_trainable_parameters()[0]}, f"{out}/results.pt")
