from __future__ import annotations

import pytest
import torch
from torch import nn

from src.encoders.recurrent import RecurrentEncoder, RecurrentLayers
from src.tasks.heads import ClipClassifierHead, EmbeddingHead, FrameClassifierHead, SequencePooling

POOLINGS = ["last", "mean", "attention"]


def test_last_pooling_takes_each_examples_last_real_frame() -> None:
    outputs = torch.arange(24.0).view(2, 4, 3)
    pooled = SequencePooling("last", 3)(outputs, torch.tensor([4, 2]))
    torch.testing.assert_close(pooled, torch.stack([outputs[0, 3], outputs[1, 1]]), rtol=0, atol=0)
    torch.testing.assert_close(SequencePooling("last", 3)(outputs), outputs[:, -1], rtol=0, atol=0)


def test_bidirectional_last_pooling_reads_each_half_where_its_direction_ends() -> None:
    # Forward half at the last real frame, backward half at the first frame.
    outputs = torch.arange(40.0).view(2, 5, 4)
    pooled = SequencePooling("last", 4, bidirectional=True)(outputs, torch.tensor([5, 3]))
    expected = torch.stack(
        [torch.cat([outputs[0, 4, :2], outputs[0, 0, 2:]]), torch.cat([outputs[1, 2, :2], outputs[1, 0, 2:]])]
    )
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)


@pytest.mark.parametrize("lengths", [None, torch.tensor([7, 3])])
def test_bidirectional_last_pooling_is_the_final_hidden_state_of_each_direction(
    lengths: torch.Tensor | None,
) -> None:
    torch.manual_seed(0)
    layers = RecurrentLayers("lstm", input_size=4, hidden_size=3, num_layers=2, bidirectional=True).eval()
    torch.manual_seed(0)
    reference = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True).eval()
    sequence = torch.randn(2, 7, 4)
    with torch.no_grad():
        pooled = SequencePooling("last", 6, bidirectional=True)(layers(sequence, lengths), lengths)
        if lengths is None:
            _, (h_n, _) = reference(sequence)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                sequence, lengths, batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = reference(packed)
    torch.testing.assert_close(pooled, torch.cat([h_n[-2], h_n[-1]], dim=-1), rtol=1e-5, atol=1e-6)


def test_mean_pooling_averages_real_frames_only() -> None:
    outputs = torch.randn(2, 6, 3)
    outputs[1, 2:] = 1e6  # padding: must not enter the mean
    pooled = SequencePooling("mean", 3)(outputs, torch.tensor([6, 2]))
    torch.testing.assert_close(pooled[0], outputs[0].mean(dim=0))
    torch.testing.assert_close(pooled[1], outputs[1, :2].mean(dim=0))


@pytest.mark.parametrize("lengths", [None, torch.tensor([5, 5, 5])])
def test_mean_shortcut_equals_the_masked_mean_when_every_frame_is_real(lengths: torch.Tensor | None) -> None:
    outputs = torch.randn(3, 5, 4)
    pooled = SequencePooling("mean", 4)(outputs, lengths)
    full = torch.tensor([5, 5, 5])
    mask = (torch.arange(5) < full.unsqueeze(1)).unsqueeze(-1)
    masked_mean = (outputs * mask).sum(dim=1) / full.unsqueeze(-1)
    torch.testing.assert_close(pooled, masked_mean)
    # The lengths are read: one real frame fewer changes the mean.
    assert not torch.allclose(SequencePooling("mean", 4)(outputs, torch.tensor([5, 5, 4])), pooled)


def test_attention_weights_padded_frames_zero() -> None:
    torch.manual_seed(0)
    pooling = SequencePooling("attention", 3)
    outputs = torch.randn(1, 5, 3)
    with torch.no_grad():
        pooled = pooling(outputs, torch.tensor([2]))
        weights = pooling.score(outputs[:, :2]).squeeze(-1).softmax(dim=1)
        garbage = torch.cat([outputs[:, :2], 1e3 * torch.randn(1, 3, 3)], dim=1)
        torch.testing.assert_close(pooling(garbage, torch.tensor([2])), pooled)
    torch.testing.assert_close(pooled, weights @ outputs[0, :2])


def test_attention_over_every_frame_is_the_softmax_weighted_sum() -> None:
    torch.manual_seed(0)
    pooling = SequencePooling("attention", 3)
    outputs = torch.randn(2, 4, 3)
    with torch.no_grad():
        weights = pooling.score(outputs).squeeze(-1).softmax(dim=1)
        expected = (weights.unsqueeze(-1) * outputs).sum(dim=1)
        torch.testing.assert_close(pooling(outputs), expected)
    assert sum(p.numel() for p in pooling.parameters()) == 3 + 1
    assert sum(p.numel() for p in SequencePooling("mean", 3).parameters()) == 0


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_clip_head_on_a_padded_recurrent_encoder_gives_each_example_alone(
    pooling: str, bidirectional: bool
) -> None:
    # The old RecurrentClassifier's padding invariance: encoder and head together read real frames only.
    torch.manual_seed(0)
    encoder = RecurrentEncoder(6, "lstm", hidden_size=5, bidirectional=bidirectional).eval()
    encoder.input_norm.running_mean.normal_()
    encoder.input_norm.running_var.uniform_(0.5, 2.0)
    head = ClipClassifierHead(encoder.out_features, 4, bidirectional, pooling=pooling).eval()
    short, long = torch.randn(1, 6, 9), torch.randn(1, 6, 15)
    batch = torch.cat([long, torch.cat([short, 100 * torch.randn(1, 6, 6)], dim=-1)])
    with torch.no_grad():
        padded = head(*encoder(batch, torch.tensor([15, 9])))
        alone = torch.cat([head(*encoder(long)), head(*encoder(short))])
    assert padded.shape == (2, 4)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_clip_head_is_pooling_then_linear(pooling: str) -> None:
    torch.manual_seed(0)
    head = ClipClassifierHead(6, 3, pooling=pooling, dropout=0.0)
    sequence, lengths = torch.randn(4, 7, 6), torch.tensor([7, 3, 1, 5])
    logits = head(sequence, lengths)
    assert logits.shape == (4, 3)
    torch.testing.assert_close(logits, head.classifier(head.pooling(sequence, lengths)))
    assert (head.classifier.in_features, head.classifier.out_features) == (6, 3)


def test_clip_head_dropout_acts_in_training_only() -> None:
    head = ClipClassifierHead(6, 3, dropout=0.5)
    sequence = torch.randn(8, 5, 6)
    assert head.dropout.p == 0.5
    head.eval()
    torch.testing.assert_close(head(sequence), head.classifier(sequence.mean(dim=1)))
    head.train()
    torch.manual_seed(0)
    assert not torch.allclose(head(sequence), head.classifier(sequence.mean(dim=1)))


def test_frame_head_classifies_every_frame() -> None:
    torch.manual_seed(0)
    head = FrameClassifierHead(6, 5, bidirectional=True, dropout=0.0)
    sequence = torch.randn(3, 7, 6)
    logits = head(sequence)
    assert logits.shape == (3, 7, 5)
    torch.testing.assert_close(logits, sequence @ head.classifier.weight.T + head.classifier.bias)
    assert FrameClassifierHead(6, 5).dropout.p == 0.2


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("hidden", [(), (8,), (8, 7)])
def test_embedding_rows_have_unit_norm(pooling: str, hidden: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    head = EmbeddingHead(6, bidirectional=True, embedding_dim=4, hidden=hidden, pooling=pooling)
    sequence, lengths = 10 * torch.randn(5, 9, 6), torch.tensor([9, 4, 1, 9, 2])
    embeddings = head(sequence, lengths)
    assert embeddings.shape == (5, 4)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(5))
    linears = [m for m in head.projection if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip((6, *hidden), (*hidden, 4), strict=True)
    )
    # The embedding is the normalised projection of the pooled real frames.
    expected = head.projection(head.pooling(sequence, lengths))
    torch.testing.assert_close(embeddings, expected / expected.norm(dim=-1, keepdim=True))


def test_embedding_dot_product_is_the_cosine_similarity_of_the_projections() -> None:
    torch.manual_seed(0)
    head = EmbeddingHead(6, embedding_dim=4, hidden=(8,))
    x, y = torch.randn(1, 5, 6), torch.randn(1, 5, 6)
    projected = [head.projection(head.pooling(sequence)) for sequence in (x, y)]
    torch.testing.assert_close((head(x) * head(y)).sum(), nn.functional.cosine_similarity(*projected)[0])


@pytest.mark.parametrize(
    "build",
    [
        lambda: SequencePooling("max", 4),
        lambda: ClipClassifierHead(4, 3, pooling="max"),
        lambda: EmbeddingHead(4, pooling="max"),
    ],
)
def test_unknown_pooling_names_the_key(build) -> None:
    with pytest.raises(
        ValueError, match=r"task\.head\.pooling must be one of \['last', 'mean', 'attention'\], got 'max'"
    ):
        build()


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5])
@pytest.mark.parametrize("head", [ClipClassifierHead, FrameClassifierHead])
def test_impossible_dropout_names_the_key(head: type[nn.Module], dropout: float) -> None:
    with pytest.raises(ValueError, match=rf"task\.head\.dropout must be in \[0, 1\), got {dropout}"):
        head(4, 3, dropout=dropout)


@pytest.mark.parametrize(
    ("kwargs", "widths"), [({"embedding_dim": 0}, r"\[512, 0\]"), ({"hidden": (8, 0)}, r"\[8, 0, 256\]")]
)
def test_impossible_embedding_widths_name_the_keys(kwargs: dict, widths: str) -> None:
    with pytest.raises(
        ValueError, match=rf"task\.head\.hidden and task\.head\.embedding_dim must be >= 1, got {widths}"
    ):
        EmbeddingHead(4, **kwargs)
