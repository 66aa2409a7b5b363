"""Odd input at the Speech Commands data boundary (issue 12, items 8, 9 and 14): split lists, clip files,
background noise, the 12-class test archive and a real corpus where the generated one is expected.

Each test builds a small fake corpus in ``tmp_path`` (see ``test_speech_commands_datamodule.py``).
"""

from __future__ import annotations

import codecs
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torchaudio.datasets.speechcommands as speechcommands_module
from torchaudio.datasets import SPEECHCOMMANDS

from src.data.common.audio import AudioDecodeError
from src.data.speech_commands.corpus import ensure_generated_corpus
from src.data.speech_commands.split_lists import list_word_clips, read_split_lists, split_word_clips
from tests.data.test_speech_commands_datamodule import (
    SAMPLE_RATE,
    SPEAKERS,
    V2,
    _clip,
    make_dm,
    make_fake_corpus,
    root_of,
    serve_as_download,
)

LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fake v0.02 corpus under ``tmp_path/data``; returns the corpus folder."""
    return make_fake_corpus(tmp_path / "data" / "SpeechCommands" / V2)


def _splits(corpus: Path, **options: object) -> dict[str, list[str]]:
    dm = make_dm(root_of(corpus), **options)
    dm.setup()
    return {split: dm.files(split) for split in ("train", "val", "test")}


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_keeps_every_listed_clip_in_its_split(
    corpus: Path, split: str, encoding: str
) -> None:
    expected = _splits(corpus)
    list_file = corpus / LISTS[split]
    first = list_file.read_text().splitlines()[0]
    list_file.write_bytes(list_file.read_text().encode(encoding))  # Notepad, PowerShell
    assert list_file.read_bytes().startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))

    found = _splits(corpus)
    assert found == expected
    assert first in found[split] and first not in found["train"]


def test_crlf_line_ends_blank_lines_and_spaces_are_read_right(corpus: Path) -> None:
    expected = _splits(corpus)
    for list_file in (corpus / name for name in LISTS.values()):
        lines = list_file.read_text().splitlines()
        list_file.write_bytes(("\r\n  \r\n".join(f" {line}\t" for line in lines) + "\r\n\r\n").encode())
    assert _splits(corpus) == expected


def test_a_clip_in_both_lists_is_an_error_naming_it_and_its_lines(corpus: Path) -> None:
    shared = (corpus / "testing_list.txt").read_text().splitlines()[1]
    with (corpus / "validation_list.txt").open("a") as list_file:
        list_file.write(f"{shared}\n")
    with pytest.raises(
        ValueError,
        match=rf"1 clips .* both validation_list\.txt and testing_list\.txt.*{shared}.*line 7.*line 2",
    ):
        make_dm(root_of(corpus)).setup()


def test_a_clip_listed_twice_is_used_once_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    val_list = corpus / "validation_list.txt"
    first = val_list.read_text().splitlines()[0]
    val_list.write_text(val_list.read_text() + f"{first}\n")
    with caplog.at_level(logging.WARNING):
        val = _splits(corpus)["val"]
    assert val.count(first) == 1 and len(val) == 4
    assert f"names 1 clips more than once, each used once: {first} (lines 1 and 7)" in caplog.text


def test_a_list_that_is_not_text_names_the_file(corpus: Path) -> None:
    (corpus / "testing_list.txt").write_bytes(b"yes/caf\xe9_nohash_0.wav\n")  # Latin-1
    with pytest.raises(ValueError, match=r"testing_list\.txt is not UTF-8 text.*save it as UTF-8"):
        make_dm(root_of(corpus)).setup()


def test_missing_listed_clips_are_counted_with_their_lines(corpus: Path) -> None:
    with (corpus / "validation_list.txt").open("a") as list_file:
        list_file.write("yes/eeeeeeee_nohash_0.wav\nno/ffffffff_nohash_0.wav\nup/ffffffff_nohash_0.wav\n")
    with pytest.raises(
        FileNotFoundError,
        match=r"2 list entries name clips that do not exist: validation_list\.txt line 7 names clip "
        r"yes/eeeeeeee_nohash_0\.wav; validation_list\.txt line 8",
    ):
        make_dm(root_of(corpus), words=["yes", "no"]).setup()
    # _unknown_ is drawn from every word: then the clip of "up" is missing too
    with pytest.raises(FileNotFoundError, match=r"3 list entries"):
        make_dm(root_of(corpus), words=["yes", "no"], unknown_percentage=10).setup()


def test_splits_equal_torchaudios_on_a_well_formed_corpus(corpus: Path) -> None:
    by_split = split_word_clips(read_split_lists(corpus), list_word_clips(corpus))
    for split, subset in (("train", "training"), ("val", "validation"), ("test", "testing")):
        reference = SPEECHCOMMANDS(root_of(corpus), url=V2, subset=subset)
        listed: dict[str, list[str]] = {}
        for n in range(len(reference)):
            relpath, _, label, _, _ = reference.get_metadata(n)
            listed.setdefault(label, []).append(Path(relpath).relative_to(V2).as_posix())
        assert by_split[split] == {word: sorted(names) for word, names in sorted(listed.items())}


def test_files_of_word_folders_that_are_not_clips_are_counted(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _splits(corpus)
    for name in ("yes/0a1b2c3d_nohash_5.WAV", "yes/recording.wav", "no/0a1b2c3d_nohash_x.wav"):
        sf.write(corpus / name, _clip("yes", 0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    (corpus / "yes" / ".DS_Store").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert _splits(corpus) == expected
    assert "3 files of word folders are not <word>/<speaker>_nohash_<n>.wav clips" in caplog.text
    assert "no/0a1b2c3d_nohash_x.wav, yes/0a1b2c3d_nohash_5.WAV, yes/recording.wav" in caplog.text


def test_a_word_with_only_misnamed_files_says_what_it_holds(corpus: Path) -> None:
    for path in (corpus / "up").iterdir():
        path.rename(path.with_suffix(".WAV"))
    with pytest.raises(ValueError, match=r"No clips for word 'up'.*it holds 8 other files, e.g\. up/.*\.WAV"):
        make_dm(root_of(corpus), words=["yes", "up"]).setup()


def test_clip_faults_in_a_split_error_or_are_counted(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    truncated = corpus / "yes" / f"{SPEAKERS[0]}_nohash_0.wav"
    truncated.write_bytes(truncated.read_bytes()[: 44 + 1000])  # 500 of its 3200 samples
    dm = make_dm(root_of(corpus))
    with pytest.raises(AudioDecodeError, match=rf"yes/{SPEAKERS[0]}_nohash_0\.wav is truncated"):
        dm.setup("fit")
    assert not list(dm.cache_dir.glob("*.tmp")) and not list(dm.cache_dir.glob("*train*.npy"))

    sf.write(truncated, np.full(10, 1000, np.int16), SAMPLE_RATE, subtype="PCM_16")  # a 10-sample clip
    hot = corpus / "no" / f"{SPEAKERS[1]}_nohash_1.wav"
    sf.write(hot, np.full(3200, 1.2, np.float32), SAMPLE_RATE, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "1 clips are shorter than 0.10 s (the shortest has 10 samples)" in caplog.text
    assert "clipped 1 float clips with samples beyond [-1, 1] (largest 1.200)" in caplog.text
    train = dm._datasets["train"]
    assert train[train.files.index(f"yes/{SPEAKERS[0]}_nohash_0.wav")][1] == 10

    sf.write(hot, np.full(3200, 201.8, np.float32), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(
        AudioDecodeError, match=rf"no/{SPEAKERS[1]}_nohash_1\.wav holds float samples up to 201\.8"
    ):
        make_dm(root_of(corpus)).setup("fit")


def test_background_noise_not_named_wav_is_counted(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    noise_dir = corpus / "_background_noise_"
    (noise_dir / "white_noise.wav").rename(noise_dir / "white_noise.WAV")
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(FileNotFoundError, match=r"_background_noise_ holds no \.wav recordings"),
    ):
        make_dm(root_of(corpus), silence_percentage=10).setup("fit")
    assert "1 recordings are skipped because their names do not end in .wav" in caplog.text
    assert "white_noise.WAV" in caplog.text


def _official_archive(corpus: Path, labels: tuple[str, ...]) -> Path:
    archive = corpus.parent / "speech_commands_test_set_v0.02"
    for label in labels:
        (archive / label).mkdir(parents=True)
        sf.write(archive / label / "clip0.wav", _clip("yes", 5), SAMPLE_RATE, subtype="PCM_16")
    return archive


def _long_noise(corpus: Path) -> None:
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, SAMPLE_RATE * 10).astype(np.float32)
    sf.write(corpus / "_background_noise_" / "white_noise.wav", noise, SAMPLE_RATE, subtype="FLOAT")


def test_a_test_archive_with_other_labels_is_not_used_and_says_so(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _long_noise(corpus)
    _official_archive(corpus, ("yes", "no", "_silence_", "_unknown_", "left"))
    dm = make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=10, unknown_percentage=10)
    with caplog.at_level(logging.WARNING):
        dm.setup("test")
    assert not dm.uses_official_test_set
    assert "speech_commands_test_set_v0.02 is not the test split: its label folders" in caplog.text
    assert "'left'" in caplog.text and "the test split follows testing_list.txt" in caplog.text


def test_an_incomplete_test_archive_is_refused(corpus: Path) -> None:
    _long_noise(corpus)
    archive = _official_archive(corpus, ("yes", "no", "_silence_"))
    (archive / "_unknown_").mkdir()  # extraction interrupted
    dm = make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=10, unknown_percentage=10)
    with pytest.raises(ValueError, match=r"speech_commands_test_set_v0\.02 is incomplete: _unknown_ hold no"):
        dm.setup("test")


def test_a_real_corpus_at_data_root_says_data_corpus_speechcommands(corpus: Path) -> None:
    dm = make_dm(root_of(corpus), corpus="generated", generator={"num_speakers": 2})
    with pytest.raises(
        ValueError, match=r"not generated by this project.*set data\.corpus=speechcommands"
    ) as err:
        dm.prepare_data()
    assert "delete" not in str(err.value).lower()
    with pytest.raises(RuntimeError, match=r"use data\.corpus=speechcommands") as err:
        ensure_generated_corpus(root_of(corpus), num_speakers=2)
    assert "delete it" not in str(err.value)
    assert sorted(p.name for p in (root_of(corpus) / "SpeechCommands").iterdir()) == [V2]


def test_a_real_corpus_of_the_other_version_is_not_generated_over(tmp_path: Path) -> None:
    make_fake_corpus(tmp_path / "SpeechCommands" / "speech_commands_v0.01", words=("yes", "no"))
    dm = make_dm(tmp_path, corpus="generated", generator={"num_speakers": 2})
    with pytest.raises(
        ValueError, match=r"real speech_commands_v0\.01.*data\.corpus=speechcommands and set data\.version="
    ):
        dm.prepare_data()
    assert not (tmp_path / "SpeechCommands" / V2).exists()


@pytest.mark.parametrize("corpus_kind", ["generated", "speechcommands"])
def test_data_root_at_the_corpus_folder_itself_names_the_right_root(corpus: Path, corpus_kind: str) -> None:
    dm = make_dm(corpus, corpus=corpus_kind, generator={"num_speakers": 2})
    expected = rf"corpus folder itself.*set data\.root={root_of(corpus)} data\.version={V2}"
    with pytest.raises((ValueError, FileNotFoundError), match=expected):
        dm.prepare_data()
    assert not (corpus / "SpeechCommands").exists()


def test_download_with_the_generated_corpus_is_refused() -> None:
    with pytest.raises(ValueError, match=r"data\.download=true .* set data\.corpus=speechcommands"):
        make_dm(Path("unused"), corpus="generated", download=True)


def test_an_interrupted_extraction_is_extracted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_fake_corpus(tmp_path / "tarball_contents", words=("yes", "no"))
    downloads = serve_as_download(source, monkeypatch)

    def interrupted_extract(archive: str, to_path: str) -> None:
        with tarfile.open(archive) as tar:  # the lists and "yes" are out when the run is killed
            tar.extractall(
                to_path, [m for m in tar.getmembers() if not m.name.startswith("no")], filter="data"
            )
        raise KeyboardInterrupt

    real_extract = speechcommands_module._extract_tar
    monkeypatch.setattr(speechcommands_module, "_extract_tar", interrupted_extract)
    root = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        make_dm(root, download=True).prepare_data()
    monkeypatch.setattr(speechcommands_module, "_extract_tar", real_extract)

    dm = make_dm(root, download=True)
    dm.prepare_data()
    dm.setup()
    assert len(dm.files("train")) == 8 and {name.split("/")[0] for name in dm.files("train")} == {"yes", "no"}
    assert len(downloads) == 1  # the archive was kept: extracted again, not downloaded again
    assert not list((root / "SpeechCommands").glob(".*.extracting"))


def test_a_damaged_generator_manifest_names_it(tmp_path: Path) -> None:
    corpus_dir = make_fake_corpus(tmp_path / "SpeechCommands" / V2, words=("yes", "no"))
    (corpus_dir / "generator.json").write_bytes(b"{\x00\x00 cut short")
    with pytest.raises(RuntimeError, match=r"generator\.json is damaged .*delete .* to regenerate it"):
        ensure_generated_corpus(tmp_path, num_speakers=2)
