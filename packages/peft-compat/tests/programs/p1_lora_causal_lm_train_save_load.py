"""LoRA on a causal LM: a few training steps, save, load into a fresh base, compare logits."""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from peft import LoraConfig, PeftModel, TaskType, get_peft_model

out = sys.argv[1]


def base():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config)


torch.manual_seed(1)
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type=TaskType.CAUSAL_LM)
model = get_peft_model(base(), config)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
ids = torch.randint(0, 128, (4, 12), generator=torch.Generator().manual_seed(2))
losses = []
for _ in range(3):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.detach())
model.eval()
with torch.no_grad():
    trained = model(input_ids=ids).logits
model.save_pretrained(f"{out}/adapter")
loaded = PeftModel.from_pretrained(base(), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
trainable, total = model.get_nb_trainable_parameters()
torch.save({"losses": torch.stack(losses), "trained": trained, "reloaded": reloaded,
            "counts": torch.tensor([trainable, total])}, f"{out}/results.pt")
