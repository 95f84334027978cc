"""Tiny base models for the conformance kit and for method packages' own tests.

Plain `nn.Module`s (`MLP`, `CONV`, `EMBEDDING`) run anywhere; the transformers models (`LLAMA`,
`GPT2` with Conv1D layers, `BERT` classifier, `T5` encoder-decoder, `QWEN3_MOE`) are built from
configs with random weights (nothing is downloaded) and import transformers only when built.
Every model's inputs have 4 rows. `make_*` functions return a fresh model for tests that want one.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable

import torch
from torch import nn

from .declare import TinyModel

VOCAB = 128


class LayerStack(nn.Module):
    """Named layers applied in the order given, a ReLU after every `nn.Linear` but the last: the kit's MLP,
    and packages' own variants of it (other sizes, more norms). Which outputs get the ReLU is fixed when
    built, so adapter layers wrapping the linears keep the forward."""

    def __init__(self, **layers: nn.Module) -> None:
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
        self.order = tuple(layers)
        self.relu_after = frozenset([name for name, layer in layers.items() if isinstance(layer, nn.Linear)][:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
            if name in self.relu_after:
                x = torch.relu(x)
        return x


class MLPModule(LayerStack):
    """Linear layers of several shapes, with biases, and a LayerNorm (for norm-tuning methods)."""

    def __init__(self) -> None:
        super().__init__(lin0=nn.Linear(16, 32), norm=nn.LayerNorm(32), lin1=nn.Linear(32, 32), lin2=nn.Linear(32, 16))


class ConvModule(nn.Module):
    """Conv1d / Conv2d (3x3 and 1x1) / Conv3d layers and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.pointwise = nn.Conv2d(8, 8, kernel_size=1)
        self.conv1d = nn.Conv1d(8, 8, kernel_size=3, padding=1)
        self.conv3d = nn.Conv3d(1, 4, kernel_size=(1, 3, 3), padding=(0, 1, 1))
        self.head = nn.Linear(8 * 8 + 4 * 8 * 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.pointwise(torch.relu(self.conv2d(x))))  # [B, 8, 8, 8]
        a = torch.relu(self.conv1d(h.mean(dim=3)))  # [B, 8, 8]
        b = self.conv3d(h[:, :1].unsqueeze(1))  # [B, 4, 1, 8, 8]
        return self.head(torch.cat([a.flatten(1), b.flatten(1)], dim=1))


class EmbeddingModule(nn.Module):
    """An embedding (padding row 0), linear layers (`lin1` without a bias) and a `head`."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16, padding_idx=0)
        self.lin0 = nn.Linear(16, 32)
        self.lin1 = nn.Linear(32, 16, bias=False)
        self.head = nn.Linear(16, 4)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.lin1(torch.relu(self.lin0(self.emb(input_ids))))))


class GroupedConvModule(nn.Module):
    """A grouped 3x3 Conv2d `conv2` (2 groups), a 1x1 Conv2d `point`, a Conv1d `conv1` and a Linear `lin` over
    inputs [B, 4, 4, 4], with the caller's output sizes (LyCORIS methods factorise them in different ways)."""

    def __init__(self, conv2: int, point: int, conv1: int, lin: int) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, conv2, 3, padding=1, groups=2)
        self.point = nn.Conv2d(conv2, point, 1)
        self.conv1 = nn.Conv1d(point, conv1, 3, padding=1)
        self.lin = nn.Linear(conv1 * 16, lin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.point(torch.relu(self.conv2(x))))  # [B, point, 4, 4]
        h = torch.relu(self.conv1(h.flatten(2)))  # [B, conv1, 16]
        return self.lin(h.flatten(1))


def grouped_conv(name: str, conv2: int, point: int, conv1: int, lin: int) -> TinyModel:
    """A `GroupedConvModule` with these output sizes as a kit model (targets: all four layers)."""
    return TinyModel(
        name, partial(GroupedConvModule, conv2, point, conv1, lin), lambda: {"x": torch.randn(4, 4, 4, 4)},
        targets=("conv2", "point", "conv1", "lin"),
    )


def _token_inputs(decoder: bool = False) -> dict[str, Any]:
    ids = torch.randint(2, VOCAB, (4, 6))
    mask = torch.ones_like(ids)
    mask[0, 0] = 0  # one padded position
    inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if decoder:
        inputs["decoder_input_ids"] = ids[:, :3]
    return inputs


def make_llama(seed: int | None = None, **overrides: Any) -> nn.Module:
    """The tiny Llama, with weights drawn from `seed` when one is given; `overrides` replace or add
    `LlamaConfig` fields (e.g. `attention_bias=True`, a larger `hidden_size` or `vocab_size`) for a
    package's own variant of it, so method packages need not import transformers themselves."""
    from transformers import LlamaConfig, LlamaForCausalLM

    fields: dict[str, Any] = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64,
    )
    if seed is not None:
        torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**fields, **overrides}))


def make_gpt2() -> nn.Module:
    """GPT-2 (transformers `Conv1D` layers, weights stored transposed) with random non-zero biases."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0, 0.1)
    return model


def make_bert(task: str = "SEQ_CLS") -> nn.Module:
    """A BERT for `task`: a sequence classifier (3 labels; task SEQ_CLS makes its `classifier` a
    modules_to_save), a token classifier, a question-answering head or the bare encoder."""
    import transformers

    classes = {
        "SEQ_CLS": transformers.BertForSequenceClassification,
        "TOKEN_CLS": transformers.BertForTokenClassification,
        "QUESTION_ANS": transformers.BertForQuestionAnswering,
        "FEATURE_EXTRACTION": transformers.BertModel,
    }
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, num_labels=2 if task == "QUESTION_ANS" else 3,
    )
    return classes[task](config)


def make_t5(initializer_factor: float = 1.0) -> nn.Module:
    """T5 encoder-decoder; a larger `initializer_factor` (as `tasks` uses) keeps greedy decoding from
    repeating one token, at the cost of bf16 precision."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, initializer_factor=initializer_factor,
    )
    return T5ForConditionalGeneration(config)


def make_qwen3_moe() -> nn.Module:
    """Qwen3-MoE: attention projections are nn.Linear, the experts are fused parameters."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = Qwen3MoeConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_experts=4, num_experts_per_tok=2,
        max_position_embeddings=64,
    )
    return Qwen3MoeForCausalLM(config)


_LLAMA_TARGETS = ("q_proj", "v_proj", "down_proj")
_TRANSFORMERS = {"requires": ("transformers",)}

# `targets` / `task_type`: what `on(model, ...)` cases fill in where a config names none.
MLP = TinyModel("mlp", MLPModule, lambda: {"x": torch.randn(4, 16)}, targets=("lin0", "lin1", "lin2"))
CONV = TinyModel("conv", ConvModule, lambda: {"x": torch.randn(4, 3, 8, 8)}, targets=("conv2d", "pointwise", "head"))
EMBEDDING = TinyModel(
    "embedding", EmbeddingModule, lambda: {"input_ids": torch.randint(1, VOCAB, (4, 6))}, targets=("emb", "lin0")
)
LLAMA = TinyModel("llama", make_llama, _token_inputs, targets=_LLAMA_TARGETS, task_type="CAUSAL_LM", **_TRANSFORMERS)
LLAMA_TIED = LLAMA.variant("llama-tied", factory=lambda: make_llama(tie_word_embeddings=True))
GPT2 = TinyModel("gpt2", make_gpt2, _token_inputs, targets=("c_attn", "mlp.c_proj"), task_type="CAUSAL_LM", **_TRANSFORMERS)
BERT = TinyModel("bert", make_bert, _token_inputs, targets=("query", "value"), task_type="SEQ_CLS", **_TRANSFORMERS)
T5 = TinyModel(
    "t5", make_t5, lambda: _token_inputs(decoder=True), targets=("q", "v"), task_type="SEQ_2_SEQ_LM", **_TRANSFORMERS
)
QWEN3_MOE = TinyModel(
    "qwen3_moe", make_qwen3_moe, _token_inputs, targets=("q_proj", "v_proj"), task_type="CAUSAL_LM", **_TRANSFORMERS
)

ALL = (MLP, CONV, EMBEDDING, LLAMA, GPT2, BERT, T5, QWEN3_MOE)


def adapted_copy(make_base: Callable[[], nn.Module], config: Any, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(base, adapted): the base model drawn from `seed`, and `get_peft_model(copy of it, config)`, so that a
    test compares the adapted model with the untouched base."""
    from ..mapping import get_peft_model

    torch.manual_seed(seed)
    base = make_base()
    return base, get_peft_model(copy.deepcopy(base), config)


def output_of(out: Any) -> torch.Tensor:
    """The main output tensor of a forward call (plain tensor, logits, start logits or hidden states)."""
    if torch.is_tensor(out):
        return out
    for name in ("logits", "start_logits", "last_hidden_state"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    return out[0]


def forward_output(model: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
    """`output_of(model(*args, **kwargs))`, run without gradients."""
    with torch.no_grad():
        return output_of(model(*args, **kwargs))


def assert_dropout_only_in_training(model: nn.Module, *args: Any, draws: int = 6) -> None:
    """Evaluation is deterministic and training draws the adapter's dropout: two eval-mode forwards of
    `model(*args)` are equal, and among `draws` training-mode forwards some differ. Leaves eval mode."""
    model.eval()
    assert torch.equal(forward_output(model, *args), forward_output(model, *args)), "eval-mode outputs differ"
    model.train()
    outputs = [forward_output(model, *args) for _ in range(draws)]
    model.eval()
    assert any(not torch.allclose(outputs[0], o) for o in outputs[1:]), "training mode draws no dropout"
