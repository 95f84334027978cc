"""P-tuning's own behaviour: the encoders' functions, their sizes, loading a saved matrix into a live
encoder, the task kinds the kit's cases leave out, generation.

Training, save/load, disabling, several adapters and the merge / mixed-batch refusals are the
conformance kit's checks (`tests/test_conformance.py`).
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing.tasks import assert_disabled_is_base, batch, greedy_by_forward, task_model

from peft_core import ConfigError, get_peft_model
from peft_p_tuning import PromptEncoderConfig


def _model(task="CAUSAL_LM", **kwargs):
    torch.manual_seed(1)
    kwargs.setdefault("encoder_hidden_size", 24)
    return get_peft_model(task_model(task), PromptEncoderConfig(task_type=task, num_virtual_tokens=3, **kwargs))


def test_mlp_and_lstm_encoders_compute_the_documented_functions():
    mlp = _model().base_model.prompt_encoder["default"]
    x = mlp.embedding.weight
    lin = [m for m in mlp.mlp_head if isinstance(m, torch.nn.Linear)]
    expected = lin[2](torch.relu(lin[1](torch.relu(lin[0](x)))))
    assert torch.allclose(mlp.prompt_matrix(), expected, atol=1e-6)
    lstm = _model(encoder_reparameterization_type="LSTM", encoder_num_layers=1).base_model.prompt_encoder["default"]
    hidden = lstm.lstm_head(lstm.embedding.weight.unsqueeze(0))[0][0]
    assert hidden.shape == (3, 48)  # bidirectional: 2 * encoder_hidden_size
    assert torch.allclose(lstm.prompt_matrix(), lstm.mlp_head(hidden), atol=1e-6)


def test_encoder_hidden_size_defaults_to_token_dim_and_mlp_ignores_layers():
    model = _model(encoder_hidden_size=None)
    assert model.peft_config["default"].encoder_hidden_size == 32
    with pytest.warns(UserWarning, match="encoder_num_layers=3 is ignored"):
        _model(encoder_num_layers=3)
    with pytest.raises(ConfigError, match="'MLP' or 'LSTM'"):
        PromptEncoderConfig(num_virtual_tokens=2, encoder_reparameterization_type="GRU")


def test_a_saved_matrix_does_not_load_into_a_trainable_encoder(tmp_path):
    model = _model().eval()
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="reparameterisation network"):
        model.load_adapter(tmp_path, "again", is_trainable=True)
    assert "again" not in model.peft_config


@pytest.mark.parametrize("task", ["TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
def test_disable_adapter_gives_the_base_model(task):
    """The task kinds the kit's cases don't cover (its cases: CAUSAL_LM, SEQ_2_SEQ_LM, SEQ_CLS)."""
    assert_disabled_is_base(_model(task).eval(), task)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_follows_forward(task):
    model = _model(task, encoder_reparameterization_type="LSTM").eval()
    ids, mask = batch()
    got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, greedy_by_forward(model, task))
