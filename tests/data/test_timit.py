"""The TIMIT reader (both casings), the standard splits, clear errors for incomplete corpora and bad files,
and the TimitDataModule's batches."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from src.data.base import TaskDataModule
from src.data.common.augmentation import WaveformAugmentation
from src.data.timit.audio import TimitAudioError
from src.data.timit.corpus import ensure_generated_corpus
from src.data.timit.datamodule import TimitDataModule
from src.data.timit.phones import PHONE_SETS, fold
from src.data.timit.reader import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    STANDARD_SPLIT_SIZES,
    TEST_SPEAKER_REGIONS,
    TimitLayoutError,
    TimitTranscriptionError,
    check_split_sizes,
    check_within_audio,
    find_corpus_dir,
    list_utterances,
    read_phones,
    read_segments,
    read_text,
    standard_splits,
)
from tests.conftest import compose_config

TINY = {"num_train_speakers": 2, "num_dev_speakers": 1, "num_core_speakers": 1}
PHONES = [(0, 1000, "h#"), (1000, 1800, "sh"), (1800, 2600, "iy"), (2600, 3000, "q"), (3000, 4000, "h#")]
# A header as on the TIMIT discs (libsndfile must read it, not only the headers it writes itself).
TIMIT_HEADER_FIELDS = (
    "database_id -s5 TIMIT\ndatabase_version -s3 1.0\nutterance_id -s8 aks0_sa1\nchannel_count -i 1\n"
    "sample_count -i {n}\nsample_rate -i 16000\nsample_min -i -2191\nsample_max -i 2790\n"
    "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_sig_bits -i 16\nend_head\n"
)


def write_timit_wav(path: Path, samples: np.ndarray) -> None:
    """A NIST SPHERE file with a TIMIT-style 1024-byte header."""
    header = f"NIST_1A\n   1024\n{TIMIT_HEADER_FIELDS.format(n=len(samples))}".encode()
    path.write_bytes(header.ljust(1024, b" ") + samples.astype("<i2").tobytes())


def make_tree(root: Path, lower: bool) -> None:
    """A tiny corpus: TRAIN/DR1/FCJF0 (SA1, SI1027, SX127), TEST/DR1/FAKS0 (SI, SX), TEST/DR1/MDAB0 (SX)."""
    case = str.lower if lower else str.upper
    samples = (np.sin(np.arange(4000) / 5) * 8000).astype(np.int16)
    for corpus_set, speaker, names in (
        ("train", "fcjf0", ("sa1", "si1027", "sx127")),
        ("test", "faks0", ("si943", "sx133")),
        ("test", "mdab0", ("sx139",)),
    ):
        folder = root / case(corpus_set) / case("dr1") / case(speaker)
        folder.mkdir(parents=True)
        for name in names:
            if name == "sx139":
                write_timit_wav(folder / case(f"{name}.wav"), samples)
            else:
                soundfile.write(folder / case(f"{name}.wav"), samples, 16000, format="NIST", subtype="PCM_16")
            (folder / case(f"{name}.phn")).write_text("".join(f"{a} {b} {p}\n" for a, b, p in PHONES))
            (folder / case(f"{name}.wrd")).write_text("1000 2600 she\n")
            (folder / case(f"{name}.txt")).write_text("0 4000 She.\n")


@pytest.mark.parametrize("lower", [False, True], ids=["UPPER", "lower"])
def test_reader_reads_both_casings(tmp_path: Path, lower: bool) -> None:
    make_tree(tmp_path, lower)
    corpus_dir = find_corpus_dir(tmp_path)
    assert corpus_dir == tmp_path
    utterances = list_utterances(corpus_dir)
    expected = ["test/dr1/faks0/si943.wav", "test/dr1/faks0/sx133.wav", "test/dr1/mdab0/sx139.wav"]
    expected += ["train/dr1/fcjf0/sa1.wav", "train/dr1/fcjf0/si1027.wav", "train/dr1/fcjf0/sx127.wav"]
    assert [u.path.lower() for u in utterances] == expected
    assert all(u.path == (u.path.lower() if lower else u.path.upper()) for u in utterances)
    first = utterances[0]
    assert (first.corpus_set, first.region, first.speaker, first.name) == ("test", 1, "faks0", "si943")
    phones = read_phones(corpus_dir / first.phn_path)
    assert [(s.start, s.end, s.label) for s in phones] == PHONES
    assert (
        read_segments(corpus_dir / Path(first.phn_path).with_suffix(".wrd" if lower else ".WRD"))[0].label
        == "she"
    )
    assert read_text(corpus_dir / Path(first.path).with_suffix(".txt" if lower else ".TXT")) == (
        0,
        4000,
        "She.",
    )
    for utterance in utterances:  # soundfile's own NIST files and a TIMIT-style header both decode
        samples, rate = soundfile.read(corpus_dir / utterance.path, dtype="int16")
        assert rate == 16000 and len(samples) == 4000 and samples[10] == int(np.sin(2) * 8000)
    splits = standard_splits(utterances)
    assert [u.name for u in splits["train"]] == ["si1027", "sx127"]  # SA left out
    assert [u.speaker for u in splits["val"]] == ["faks0", "faks0"]
    assert [u.speaker for u in splits["test"]] == ["mdab0"]


def test_corpus_in_a_timit_subfolder_is_found(tmp_path: Path) -> None:
    make_tree(tmp_path / "TIMIT", lower=False)
    assert find_corpus_dir(tmp_path) == tmp_path / "TIMIT"


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TimitLayoutError, match=r"expected TRAIN/ and TEST/.*LDC93S1.*data.corpus=generated"):
        find_corpus_dir(tmp_path / "nowhere")
    (tmp_path / "TRAIN").mkdir()
    with pytest.raises(TimitLayoutError, match=r"holds \['TRAIN'\]"):
        TimitDataModule(tmp_path, corpus="timit").prepare_data()


def make_full_tree(root: Path) -> None:
    """Empty stand-ins for every .WAV/.PHN of TIMIT: 462 TRAIN speakers and 168 TEST speakers (the 50
    development, the 24 core test and 94 others), each with SA1-2, SI x3 and SX x5."""
    names = ["sa1", "sa2", "si1", "si2", "si3", "sx1", "sx2", "sx3", "sx4", "sx5"]
    others = [f"mzz{chr(97 + i // 10)}{i % 10}" for i in range(94)]
    train = [f"{'fm'[i % 2]}x{chr(97 + i // 26 % 26)}{chr(97 + i % 26)}0" for i in range(462)]
    speakers = [("TRAIN", 1 + i % 8, s) for i, s in enumerate(train)]
    speakers += [("TEST", TEST_SPEAKER_REGIONS[s], s) for s in (*DEV_SPEAKERS, *CORE_TEST_SPEAKERS)]
    speakers += [("TEST", 1 + i % 8, s) for i, s in enumerate(others)]
    for corpus_set, region, speaker in speakers:
        folder = root / corpus_set / f"DR{region}" / speaker.upper()
        folder.mkdir(parents=True)
        for name in names:
            (folder / f"{name.upper()}.WAV").touch()
            (folder / f"{name.upper()}.PHN").touch()


def test_standard_split_sizes_and_disjoint_speakers(tmp_path: Path) -> None:
    make_full_tree(tmp_path)
    splits = standard_splits(list_utterances(tmp_path))
    assert {split: len(us) for split, us in splits.items()} == {"train": 3696, "val": 400, "test": 192}
    assert STANDARD_SPLIT_SIZES == {"train": 3696, "val": 400, "test": 192}
    speakers = {split: {u.speaker for u in us} for split, us in splits.items()}
    assert (len(speakers["train"]), len(speakers["val"]), len(speakers["test"])) == (462, 50, 24)
    assert speakers["val"] == set(DEV_SPEAKERS) and speakers["test"] == set(CORE_TEST_SPEAKERS)
    assert speakers["train"].isdisjoint(speakers["val"] | speakers["test"])
    assert speakers["val"].isdisjoint(speakers["test"])
    assert not any(u.is_dialect_sentence for us in splits.values() for u in us)
    check_split_sizes(splits, STANDARD_SPLIT_SIZES, tmp_path, "TIMIT copy")  # complete: no error
    TimitDataModule(tmp_path, corpus="timit").prepare_data()  # lists and checks, decodes nothing


def test_core_test_set_is_two_men_and_a_woman_per_region() -> None:
    for region in range(1, 9):
        speakers = [s for s in CORE_TEST_SPEAKERS if TEST_SPEAKER_REGIONS[s] == region]
        assert sorted(s[0] for s in speakers) == ["f", "m", "m"]
    assert len(set(DEV_SPEAKERS)) == 50 and not set(DEV_SPEAKERS) & set(CORE_TEST_SPEAKERS)


def test_incomplete_timit_copy_is_a_clear_error(tmp_path: Path) -> None:
    make_full_tree(tmp_path)
    (tmp_path / "TEST" / "DR1" / "MDAB0" / "SX1.WAV").unlink()
    (tmp_path / "TEST" / "DR1" / "MDAB0" / "SX1.PHN").unlink()
    with pytest.raises(
        TimitLayoutError, match=r"Incomplete TIMIT copy .*test: 191 utterances of 24 speakers"
    ):
        TimitDataModule(tmp_path, corpus="timit").prepare_data()
    (tmp_path / "TEST" / "DR1" / "MDAB0" / "SX2.PHN").unlink()
    with pytest.raises(TimitLayoutError, match=r"SX2.WAV has no transcription sx2.PHN"):
        list_utterances(tmp_path)


def test_bad_phn_files_are_clear_errors(tmp_path: Path) -> None:
    phn = tmp_path / "X.PHN"
    phn.write_text("0 100 h#\n100 5000 aa\n")
    with pytest.raises(
        TimitTranscriptionError, match=r"X.PHN runs to sample 5000 .*segment 2.* but .*X.WAV holds only 4000"
    ):
        check_within_audio(read_phones(phn), phn, tmp_path / "X.WAV", 4000)
    check_within_audio(read_phones(phn), phn, tmp_path / "X.WAV", 5000)  # ends with the audio: fine
    phn.write_text("0 100 h#\n100 200 xx\n")
    with pytest.raises(TimitTranscriptionError, match=r"'xx' .* is not one of the 61 TIMIT phones"):
        read_phones(phn)
    phn.write_text("0 100\n")
    with pytest.raises(TimitTranscriptionError, match="is not '<start sample> <end sample> <label>'"):
        read_phones(phn)


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding a tiny generated corpus in TIMIT/: 16 training, 8 development, 8 test utterances."""
    root = tmp_path_factory.mktemp("timit_dm")
    ensure_generated_corpus(root, **TINY, num_workers=2)
    return root


def make_datamodule(root: Path, **kwargs) -> TimitDataModule:
    datamodule = TimitDataModule(root, corpus="generated", generator={**TINY, "num_workers": 2}, **kwargs)
    datamodule.prepare_data()
    return datamodule


@pytest.mark.parametrize("num_phones", [61, 48, 39])
def test_batches_match_the_phn_files(generated_root: Path, num_phones: int) -> None:
    datamodule = make_datamodule(generated_root, phones=num_phones, batch_size=3)
    datamodule.setup("fit")
    datamodule.setup("test")
    assert datamodule.phones == list(PHONE_SETS[num_phones]) == datamodule.label_names
    assert datamodule.sample_rate == 16000 == datamodule.example_samples
    assert {split: len(datamodule.files(split)) for split in ("train", "val", "test")} == {
        "train": 16,
        "val": 8,
        "test": 8,
    }
    corpus_dir = datamodule.corpus_dir
    for split, loader in (("val", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        files = iter(datamodule.files(split))
        for waveforms, wave_lengths, targets, target_lengths in loader:
            assert waveforms.dtype == torch.float32 and targets.dtype == torch.int64
            assert wave_lengths.dtype == target_lengths.dtype == torch.int64
            assert waveforms.shape == (len(wave_lengths), int(wave_lengths.max()))
            assert targets.shape == (len(target_lengths), int(target_lengths.max()))
            for row in range(len(wave_lengths)):
                wav = corpus_dir / next(files)
                samples, _ = soundfile.read(wav, dtype="int16")
                assert wave_lengths[row] == len(samples)
                np.testing.assert_array_equal(waveforms[row, : len(samples)].numpy() * 32768, samples)
                assert not waveforms[row, len(samples) :].any()
                phones = [s.label for s in read_phones(wav.with_suffix(".PHN"))]
                expected = [datamodule.phones.index(p) for p in fold(phones, num_phones)]
                assert targets[row, : target_lengths[row]].tolist() == expected
                assert not targets[row, target_lengths[row] :].any()


def test_train_loader_shuffles_with_the_seed_and_covers_the_split(generated_root: Path) -> None:
    datamodule = make_datamodule(generated_root, batch_size=4)
    datamodule.setup("fit")

    def epoch_lengths() -> list[int]:
        return [n for _, lengths, _, _ in datamodule.train_dataloader() for n in lengths.tolist()]

    torch.manual_seed(0)
    first = epoch_lengths()
    torch.manual_seed(0)
    assert epoch_lengths() == first
    dataset = datamodule.train_dataloader().dataset
    in_order = [len(dataset[i][0]) for i in range(len(dataset))]
    assert sorted(first) == sorted(in_order) and first != in_order


def test_resampling_and_cache_reuse(generated_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    native = make_datamodule(generated_root)
    native.setup("validate")
    resampled = make_datamodule(generated_root, sample_rate=8000)
    assert resampled.example_samples == resampled.sample_rate == 8000  # one second, the unit of its MACs
    resampled.setup("validate")
    native_wave, native_targets = native.val_dataloader().dataset[0]
    wave, targets = resampled.val_dataloader().dataset[0]
    assert len(wave) == (len(native_wave) + 1) // 2 and torch.equal(targets, native_targets)
    caplog.set_level("INFO")
    again = make_datamodule(generated_root)
    again.setup("validate")
    assert "Reusing decoded TIMIT val split" in caplog.text
    assert torch.equal(again.val_dataloader().dataset[0][0], native_wave)


def break_wav_with_garbage(wav: Path) -> None:
    wav.write_bytes(b"this is not audio" * 10)


def break_wav_rate(wav: Path) -> None:
    soundfile.write(wav, np.zeros(8000, np.int16), 8000, format="NIST", subtype="PCM_16")


def break_wav_empty(wav: Path) -> None:
    soundfile.write(wav, np.zeros(0, np.int16), 16000, format="NIST", subtype="PCM_16")


def break_phn_beyond_audio(wav: Path) -> None:
    with wav.with_suffix(".PHN").open("a") as phn:
        phn.write("99999999 100000000 h#\n")


def break_phn_unknown_phone(wav: Path) -> None:
    phn = wav.with_suffix(".PHN")
    phn.write_text(phn.read_text().replace(" h#\n", " zz\n", 1))


@pytest.mark.parametrize(
    ("breaks", "error", "message"),
    [
        (break_wav_with_garbage, TimitAudioError, "Cannot decode audio file .*SI\\d+.WAV.*corrupt"),
        (break_wav_rate, TimitAudioError, "is 8000 Hz with 1 channels; TIMIT audio is 16000 Hz mono"),
        (break_wav_empty, TimitAudioError, "is empty"),
        (
            break_phn_beyond_audio,
            TimitTranscriptionError,
            "SI\\d+.PHN runs to sample .* but .*SI\\d+.WAV holds",
        ),
        (break_phn_unknown_phone, TimitTranscriptionError, "'zz' .* not one of the 61 TIMIT phones"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_bad_files_fail_naming_the_file(
    generated_root: Path,
    tmp_path: Path,
    breaks: Callable[[Path], None],
    error: type[Exception],
    message: str,
) -> None:
    shutil.copytree(generated_root / "TIMIT", tmp_path / "TIMIT")
    breaks(sorted((tmp_path / "TIMIT" / "TRAIN").glob("DR*/*/SI*.WAV"))[0])
    datamodule = make_datamodule(tmp_path)
    with pytest.raises(error, match=message):
        datamodule.setup("fit")
    assert not list((tmp_path / ".cache").glob("*.npy"))  # no half-written cache left behind


def test_invalid_arguments_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.phones must be 61, 48 or 39"):
        TimitDataModule(tmp_path, phones=40)
    with pytest.raises(ValueError, match=r"data\.corpus must be one of"):
        TimitDataModule(tmp_path, corpus="librispeech")
    # the run always passes its augmentation partial; the rate is still named as the data's key
    with pytest.raises(ValueError, match=r"data\.sample_rate must be a positive integer"):
        TimitDataModule(tmp_path, sample_rate=0, augmentation=partial(WaveformAugmentation))
    datamodule = TimitDataModule(tmp_path)
    with pytest.raises(FileNotFoundError, match="Run prepare_data"):
        datamodule.setup("fit")


@pytest.mark.parametrize(
    "settings",
    [{"noise_prob": 0.8}, {"time_shift_ms": 100}, {"speed_prob": 1.0}],
    ids=lambda s: next(iter(s)),
)
def test_enabled_waveform_augmentation_is_refused_naming_the_setting(tmp_path: Path, settings: dict) -> None:
    with pytest.raises(ValueError, match=r"data=timit has no waveform augmentation.*use augmentation=none"):
        TimitDataModule(tmp_path, augmentation=partial(WaveformAugmentation, **settings))


def test_disabled_waveform_augmentation_is_accepted(tmp_path: Path) -> None:
    for augmentation in (None, partial(WaveformAugmentation), partial(WaveformAugmentation, noise_prob=0.0)):
        datamodule = TimitDataModule(tmp_path, augmentation=augmentation)
        assert isinstance(datamodule, TaskDataModule) and datamodule.label_names == list(PHONE_SETS[61])


@pytest.mark.parametrize(("preset", "refused"), [("none", False), ("specaugment", False), ("noise", True)])
def test_the_run_config_refuses_waveform_augmentation_for_timit(
    tmp_path: Path, preset: str, refused: bool
) -> None:
    config = compose_config("config", ["data=timit", f"paths.root_dir={tmp_path}", f"augmentation={preset}"])
    if refused:
        with pytest.raises(InstantiationException, match=r"augmentation=none"):
            instantiate(config.data)
    else:
        assert isinstance(instantiate(config.data), TimitDataModule)
