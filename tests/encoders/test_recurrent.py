from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.encoders.recurrent import RecurrentEncoder, RecurrentLayers, reverse_within_lengths
from tests.conftest import CONFIG_DIR, compose_config

CELLS = ["rnn", "lstm", "gru"]
CELL_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def small_encoder(cell: str, bidirectional: bool, **kwargs) -> RecurrentEncoder:
    """A small encoder whose input BatchNorm has non-trivial running statistics."""
    torch.manual_seed(0)
    encoder = RecurrentEncoder(
        in_features=6, cell=cell, hidden_size=5, num_layers=2, bidirectional=bidirectional, **kwargs
    )
    if isinstance(encoder.input_norm, nn.BatchNorm1d):
        encoder.input_norm.running_mean.normal_()
        encoder.input_norm.running_var.uniform_(0.5, 2.0)
    return encoder


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_output_shape_and_lengths(cell: str, bidirectional: bool) -> None:
    encoder = small_encoder(cell, bidirectional)
    assert encoder.out_features == (10 if bidirectional else 5)
    assert encoder.bidirectional is bidirectional
    assert encoder.keeps_time
    sequence, lengths = encoder(torch.randn(3, 6, 11))
    assert sequence.shape == (3, 11, encoder.out_features)
    assert lengths.dtype == torch.int64
    assert lengths.tolist() == [11, 11, 11]
    sequence, lengths = encoder(torch.randn(3, 6, 11), torch.tensor([11, 4, 1]))
    assert sequence.shape == (3, 11, encoder.out_features)
    assert lengths.tolist() == [11, 4, 1]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_padding_does_not_change_the_outputs_of_real_frames(cell: str, bidirectional: bool) -> None:
    encoder = small_encoder(cell, bidirectional).eval()
    short, long = torch.randn(1, 6, 9), torch.randn(1, 6, 15)
    garbage = 100 * torch.randn(1, 6, 6)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded, lengths = encoder(batch, torch.tensor([15, 9]))
        alone_long, _ = encoder(long)
        alone_short, _ = encoder(short)
    assert lengths.tolist() == [15, 9]
    torch.testing.assert_close(padded[:1], alone_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1:, :9], alone_short, rtol=1e-5, atol=1e-5)
    assert torch.equal(padded[1, 9:], torch.zeros(6, encoder.out_features))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_without_lengths_the_padding_reaches_the_outputs(cell: str, bidirectional: bool) -> None:
    # The lengths matter: without them the padded frames are encoded (non-zero outputs) and, for a
    # bidirectional encoder, the backward direction reads the padding before the real frames.
    encoder = small_encoder(cell, bidirectional).eval()
    short = torch.randn(1, 6, 9)
    padded = torch.cat([short, 100 * torch.randn(1, 6, 6)], dim=-1)
    with torch.no_grad():
        alone, _ = encoder(short)
        unmasked, lengths = encoder(padded)
    assert lengths.tolist() == [15]
    assert unmasked[0, 9:].abs().sum() > 0
    if bidirectional:
        assert not torch.allclose(unmasked[:, :9], alone, rtol=1e-3, atol=1e-3)
    else:  # the forward direction reaches every real frame before any padded one
        torch.testing.assert_close(unmasked[:, :9], alone, rtol=1e-5, atol=1e-5)


def test_lengths_equal_to_the_frame_count_change_nothing() -> None:
    encoder = small_encoder("lstm", True).eval()
    features = torch.randn(3, 6, 10)
    with torch.no_grad():
        with_lengths, _ = encoder(features, torch.tensor([10, 10, 10]))
        without, _ = encoder(features)
    torch.testing.assert_close(with_lengths, without)


def test_input_batchnorm_normalises_the_features_before_the_layers() -> None:
    encoder = small_encoder("gru", False).eval()
    features = torch.randn(2, 6, 7)
    with torch.no_grad():
        expected = encoder.layers(encoder.input_norm(features).transpose(1, 2))
        torch.testing.assert_close(encoder(features)[0], expected)
    assert isinstance(small_encoder("gru", False, input_batchnorm=False).input_norm, nn.Identity)


def seeded_pair(cell: str, bidirectional: bool) -> tuple[RecurrentLayers, nn.RNNBase]:
    """Our layers and torch's multi-layer recurrent module of the same shape, built from the same seed."""
    torch.manual_seed(0)
    layers = RecurrentLayers(cell, input_size=4, hidden_size=3, num_layers=2, bidirectional=bidirectional)
    torch.manual_seed(0)
    reference = CELL_MODULES[cell](4, 3, num_layers=2, bidirectional=bidirectional, batch_first=True)
    return layers.eval(), reference.eval()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_seeded_layers_start_from_the_weights_of_torchs_module(cell: str, bidirectional: bool) -> None:
    layers, reference = seeded_pair(cell, bidirectional)
    ours = [parameter for directions in layers.layers for rnn in directions for parameter in rnn.parameters()]
    theirs = list(reference.parameters())
    assert len(ours) == len(theirs) == 4 * 2 * (2 if bidirectional else 1)
    for mine, torchs in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, torchs, rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_layers_equal_torchs_module_on_a_packed_batch(cell: str, bidirectional: bool) -> None:
    # The reference: nn.LSTM/GRU/RNN with 2 layers over pack_padded_sequence, the standard way to skip
    # padding. Ours must give the same outputs at real frames and zeros at padded ones.
    layers, reference = seeded_pair(cell, bidirectional)
    assert layers.output_size == (6 if bidirectional else 3)
    sequence, lengths = 10 * torch.randn(3, 9, 4), torch.tensor([9, 4, 6])
    with torch.no_grad():
        packed = nn.utils.rnn.pack_padded_sequence(sequence, lengths, batch_first=True, enforce_sorted=False)
        expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=9)
        torch.testing.assert_close(layers(sequence, lengths), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(layers(sequence), reference(sequence)[0], rtol=1e-5, atol=1e-6)


def test_encoder_layers_equal_torchs_module_after_the_input_norm() -> None:
    # RecurrentEncoder is BatchNorm, transpose and RecurrentLayers: with the same seed its layers hold
    # nn.LSTM's weights once the BatchNorm (which has no random initialisation) is built.
    torch.manual_seed(0)
    encoder = RecurrentEncoder(4, "lstm", hidden_size=3, num_layers=2, bidirectional=True).eval()
    torch.manual_seed(0)
    reference = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True).eval()
    features, lengths = torch.randn(2, 4, 8), torch.tensor([8, 5])
    with torch.no_grad():
        normalised = encoder.input_norm(features).transpose(1, 2)
        packed = nn.utils.rnn.pack_padded_sequence(
            normalised, lengths, batch_first=True, enforce_sorted=False
        )
        expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=8)
        torch.testing.assert_close(encoder(features, lengths)[0], expected, rtol=1e-5, atol=1e-6)


def test_reverse_within_lengths_reverses_real_frames_and_keeps_padding() -> None:
    sequence = torch.arange(10.0).view(2, 5, 1)
    reversed_ = reverse_within_lengths(sequence, torch.tensor([5, 3]))
    assert reversed_.squeeze(-1).tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_within_lengths(reversed_, torch.tensor([5, 3])), sequence)
    torch.testing.assert_close(reverse_within_lengths(sequence, None), sequence.flip(1))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_reach_every_parameter(cell: str, bidirectional: bool) -> None:
    encoder = small_encoder(cell, bidirectional)
    sequence, _ = encoder(torch.randn(3, 6, 12), torch.tensor([12, 5, 8]))
    sequence.square().sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, r"model\.cell must be one of \['gru', 'lstm', 'rnn'\], got 'transformer'"),
        ({"hidden_size": 0}, r"model\.hidden_size must be >= 1, got 0"),
        ({"num_layers": 0}, r"model\.num_layers must be >= 1, got 0"),
        ({"dropout": 1.0}, r"model\.dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"model\.dropout must be in \[0, 1\)"),
    ],
)
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecurrentEncoder(in_features=6, **kwargs)


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
    encoder = RecurrentEncoder(in_features=6)
    with pytest.raises(ValueError, match=message):
        encoder(torch.randn(2, 6, 5), lengths)


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
def test_exact_macs_match_hand_count(cell: str) -> None:
    layers = RecurrentLayers(cell, input_size=5, hidden_size=3, num_layers=2, bidirectional=True)
    assert layers.exact_macs((7, 5)) == HAND_COUNTED_RECURRENT_MACS[cell]


def test_exact_macs_of_one_layer_in_one_direction() -> None:
    layers = RecurrentLayers("lstm", input_size=5, hidden_size=3, num_layers=1)
    assert layers.exact_macs((7, 5)) == (4 * 3 * 5 + 4 * 3 * 3 + 2 * 4 * 3) * 7


@pytest.mark.parametrize(("name", "cell"), [("rnn", "rnn"), ("lstm", "lstm"), ("gru", "gru")])
def test_config_file_instantiates_and_runs(name: str, cell: str) -> None:
    encoder = instantiate(OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml"), in_features=40)
    assert isinstance(encoder, RecurrentEncoder)
    assert encoder.layers.cell == cell
    assert (encoder.layers.hidden_size, encoder.layers.num_layers) == (64, 2)
    assert isinstance(encoder.input_norm, nn.BatchNorm1d)
    assert not encoder.bidirectional
    assert encoder.out_features == 64
    sequence, lengths = encoder(torch.randn(2, 40, 31), torch.tensor([31, 17]))
    assert sequence.shape == (2, 31, 64)
    assert lengths.tolist() == [31, 17]


def test_bilstm_config_is_the_lstm_config_run_in_both_directions() -> None:
    assert "defaults" in OmegaConf.load(Path(CONFIG_DIR) / "model" / "bilstm.yaml")
    cfg = compose_config("config", ["model=bilstm"]).model
    assert OmegaConf.to_container(cfg) == {
        **OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "model" / "lstm.yaml")),
        "bidirectional": True,
    }
    encoder = instantiate(cfg, in_features=40)
    assert encoder.layers.cell == "lstm"
    assert encoder.bidirectional
    assert encoder.out_features == 128
    assert encoder(torch.randn(2, 40, 31))[0].shape == (2, 31, 128)
