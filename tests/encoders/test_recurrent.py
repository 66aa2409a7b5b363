from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.backbones.rnn import RecurrentClassifier, RecurrentEncoder, SequencePooling, reverse_within_lengths
from src.utils.complexity import count_macs
from tests.conftest import CONFIG_DIR, compose_config

CELLS = ["rnn", "lstm", "gru"]
POOLINGS = ["last", "mean", "attention"]
CELL_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def small_model(cell: str, pooling: str, bidirectional: bool, **kwargs) -> RecurrentClassifier:
    """A small classifier whose input BatchNorm has non-trivial running statistics."""
    torch.manual_seed(0)
    model = RecurrentClassifier(
        in_features=6,
        num_classes=4,
        cell=cell,
        hidden_size=5,
        num_layers=2,
        bidirectional=bidirectional,
        pooling=pooling,
        **kwargs,
    )
    if isinstance(model.input_norm, nn.BatchNorm1d):
        model.input_norm.running_mean.normal_()
        model.input_norm.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS)
def test_output_shape(cell: str, pooling: str, bidirectional: bool) -> None:
    model = small_model(cell, pooling, bidirectional)
    assert model(torch.randn(3, 6, 11)).shape == (3, 4)
    assert model(torch.randn(3, 6, 11), torch.tensor([11, 4, 1])).shape == (3, 4)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS)
def test_padding_does_not_change_the_output(cell: str, pooling: str, bidirectional: bool) -> None:
    model = small_model(cell, pooling, bidirectional).eval()
    short, long = torch.randn(1, 6, 9), torch.randn(1, 6, 15)
    garbage = 100 * torch.randn(1, 6, 6)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded = model(batch, torch.tensor([15, 9]))
        alone = torch.cat([model(long), model(short)])
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


def test_lengths_equal_to_the_frame_count_change_nothing() -> None:
    model = small_model("lstm", "attention", True).eval()
    features = torch.randn(3, 6, 10)
    with torch.no_grad():
        torch.testing.assert_close(model(features, torch.tensor([10, 10, 10])), model(features))


def seeded_pair(cell: str, bidirectional: bool) -> tuple[RecurrentEncoder, nn.RNNBase]:
    """An encoder and torch's multi-layer recurrent module of the same shape, built from the same seed."""
    torch.manual_seed(0)
    encoder = RecurrentEncoder(cell, input_size=4, hidden_size=3, num_layers=2, bidirectional=bidirectional)
    torch.manual_seed(0)
    reference = CELL_MODULES[cell](4, 3, num_layers=2, bidirectional=bidirectional, batch_first=True)
    return encoder.eval(), reference.eval()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_seeded_encoder_starts_from_the_weights_of_torchs_module(cell: str, bidirectional: bool) -> None:
    encoder, reference = seeded_pair(cell, bidirectional)
    ours = [
        parameter for directions in encoder.layers for rnn in directions for parameter in rnn.parameters()
    ]
    theirs = list(reference.parameters())
    assert len(ours) == len(theirs) == 4 * 2 * (2 if bidirectional else 1)
    for mine, torchs in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, torchs, rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_encoder_equals_torchs_module_on_a_packed_batch(cell: str, bidirectional: bool) -> None:
    # The reference: nn.LSTM/GRU/RNN with 2 layers over pack_padded_sequence, the standard way to skip
    # padding. Ours must give the same outputs at real frames and zeros at padded ones.
    encoder, reference = seeded_pair(cell, bidirectional)
    sequence, lengths = 10 * torch.randn(3, 9, 4), torch.tensor([9, 4, 6])
    with torch.no_grad():
        packed = nn.utils.rnn.pack_padded_sequence(sequence, lengths, batch_first=True, enforce_sorted=False)
        expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=9)
        torch.testing.assert_close(encoder(sequence, lengths), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(encoder(sequence), reference(sequence)[0], rtol=1e-5, atol=1e-6)


def test_reverse_within_lengths_reverses_real_frames_and_keeps_padding() -> None:
    sequence = torch.arange(10.0).view(2, 5, 1)
    reversed_ = reverse_within_lengths(sequence, torch.tensor([5, 3]))
    assert reversed_.squeeze(-1).tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_within_lengths(reversed_, torch.tensor([5, 3])), sequence)
    torch.testing.assert_close(reverse_within_lengths(sequence, None), sequence.flip(1))


@pytest.mark.parametrize("lengths", [None, torch.tensor([7, 3])])
def test_bidirectional_last_pooling_is_the_final_hidden_state_of_each_direction(
    lengths: torch.Tensor | None,
) -> None:
    encoder, reference = seeded_pair("lstm", bidirectional=True)
    sequence = torch.randn(2, 7, 4)
    with torch.no_grad():
        pooled = SequencePooling("last", 6, bidirectional=True)(encoder(sequence, lengths), lengths)
        if lengths is None:
            _, (h_n, _) = reference(sequence)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                sequence, lengths, batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = reference(packed)
    torch.testing.assert_close(pooled, torch.cat([h_n[-2], h_n[-1]], dim=-1), rtol=1e-5, atol=1e-6)


def test_attention_weights_padded_frames_zero() -> None:
    pooling = SequencePooling("attention", 3)
    outputs = torch.randn(1, 5, 3)
    with torch.no_grad():
        pooled = pooling(outputs, torch.tensor([2]))
        weights = pooling.score(outputs[:, :2]).squeeze(-1).softmax(dim=1)
    torch.testing.assert_close(pooled, weights @ outputs[0, :2])


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_reach_every_parameter(cell: str, pooling: str) -> None:
    model = small_model(cell, pooling, bidirectional=True)
    model(torch.randn(3, 6, 12), torch.tensor([12, 5, 8])).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, r"model\.cell must be one of \['gru', 'lstm', 'rnn'\], got 'transformer'"),
        ({"pooling": "max"}, r"model\.pooling must be one of \['last', 'mean', 'attention'\], got 'max'"),
        ({"hidden_size": 0}, r"model\.hidden_size must be >= 1, got 0"),
        ({"num_layers": 0}, r"model\.num_layers must be >= 1, got 0"),
        ({"dropout": 1.0}, r"model\.dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"model\.dropout must be in \[0, 1\)"),
    ],
)
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecurrentClassifier(in_features=6, num_classes=4, **kwargs)


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (torch.tensor([5.0, 3.0]), "integer tensor of shape"),
        (torch.tensor([5, 3, 2]), r"shape \(2,\)"),
        (torch.tensor([[5, 3]]), r"shape \(2,\)"),
        (torch.tensor([6, 3]), r"lengths must lie in \[1, 5\]"),
        (torch.tensor([5, 0]), r"lengths must lie in \[1, 5\]"),
    ],
)
def test_impossible_lengths_fail(lengths: torch.Tensor, message: str) -> None:
    model = RecurrentClassifier(in_features=6, num_classes=4)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(2, 6, 5), lengths)


# Input size 5, hidden size 3, 2 layers, bidirectional, 7 frames. Per frame and direction, a layer with
# input size I costs g*3*I (input projection) + g*3*3 (recurrent) + 2*g*3 (bias_ih and bias_hh, one MAC
# per element as count_macs counts a Linear bias), for g = 4 (LSTM), 3 (GRU), 1 (RNN) gates. The second
# layer reads both directions of the first, I = 6.
HAND_COUNTED_RECURRENT_MACS = {
    "lstm": (4 * 3 * 5 + 4 * 3 * 3 + 2 * 4 * 3) * 7 * 2 + (4 * 3 * 6 + 4 * 3 * 3 + 2 * 4 * 3) * 7 * 2,
    "gru": (3 * 3 * 5 + 3 * 3 * 3 + 2 * 3 * 3) * 7 * 2 + (3 * 3 * 6 + 3 * 3 * 3 + 2 * 3 * 3) * 7 * 2,
    "rnn": (1 * 3 * 5 + 1 * 3 * 3 + 2 * 1 * 3) * 7 * 2 + (1 * 3 * 6 + 1 * 3 * 3 + 2 * 1 * 3) * 7 * 2,
}


def test_hand_counted_recurrent_macs_are_the_stated_numbers() -> None:
    assert HAND_COUNTED_RECURRENT_MACS == {"lstm": 3528, "gru": 2646, "rnn": 882}


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_macs_match_hand_count(cell: str) -> None:
    encoder = RecurrentEncoder(cell, input_size=5, hidden_size=3, num_layers=2, bidirectional=True)
    assert encoder.recurrent_macs(7) == HAND_COUNTED_RECURRENT_MACS[cell]


def test_recurrent_macs_of_one_layer_in_one_direction() -> None:
    encoder = RecurrentEncoder("lstm", input_size=5, hidden_size=3, num_layers=1)
    assert encoder.recurrent_macs(7) == (4 * 3 * 5 + 4 * 3 * 3 + 2 * 4 * 3) * 7


@pytest.mark.parametrize("input_batchnorm", [True, False])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS)
def test_count_macs_counts_every_recurrent_mac_once(cell: str, pooling: str, input_batchnorm: bool) -> None:
    model = RecurrentClassifier(
        in_features=5,
        num_classes=4,
        cell=cell,
        hidden_size=3,
        num_layers=2,
        bidirectional=True,
        pooling=pooling,
        input_batchnorm=input_batchnorm,
    )
    # What aten counts besides the recurrent layers (BatchNorm and the mean are not counted): the
    # classifier Linear(6, 4) with bias, and for attention the Linear(6, 1) score of each of the 7 frames
    # with bias plus the weighted sum of 7 frames of width 6.
    classifier = 6 * 4 + 4
    attention = 7 * (6 + 1) + 7 * 6 if pooling == "attention" else 0
    assert count_macs(model, (5, 7)) == HAND_COUNTED_RECURRENT_MACS[cell] + attention + classifier


def test_aten_sees_no_lstm_mac_so_analytic_macs_adds_them_all() -> None:
    # The premise of analytic_macs for the LSTM: the CPU (oneDNN) LSTM kernel is invisible to the counter.
    model = RecurrentClassifier(in_features=5, num_classes=4, cell="lstm", hidden_size=3, bidirectional=True)
    assert count_macs(model.encoder, (7, 5)) == 0
    assert model.analytic_macs(5, 7) == HAND_COUNTED_RECURRENT_MACS["lstm"]


@pytest.mark.parametrize(("name", "cell"), [("rnn", "rnn"), ("lstm", "lstm"), ("gru", "gru")])
def test_config_file_instantiates_and_runs(name: str, cell: str) -> None:
    model = instantiate(OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml"), in_features=40, num_classes=10)
    assert isinstance(model, RecurrentClassifier)
    assert model.encoder.cell == cell
    assert (model.encoder.hidden_size, model.encoder.num_layers) == (64, 2)
    assert not model.encoder.bidirectional
    assert model(torch.randn(2, 40, 101)).shape == (2, 10)


def test_bilstm_config_is_the_lstm_config_run_in_both_directions() -> None:
    assert "defaults" in OmegaConf.load(Path(CONFIG_DIR) / "model" / "bilstm.yaml")
    cfg = compose_config("config", ["model=bilstm"]).model
    assert OmegaConf.to_container(cfg) == {
        **OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "model" / "lstm.yaml")),
        "bidirectional": True,
    }
    model = instantiate(cfg, in_features=40, num_classes=10)
    assert model.encoder.cell == "lstm"
    assert model.encoder.bidirectional
    assert model.classifier.in_features == 128
    assert model(torch.randn(2, 40, 101)).shape == (2, 10)
