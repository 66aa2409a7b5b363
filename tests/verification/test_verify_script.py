"""``verify.py`` and the folder trials (``python -m src.verification.folder_trials``), as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.verification.folder_trials import score_folder
from tests.conftest import REAL_SAMPLE, REPO_ROOT, requires_real_sample, run_python

REAL_DIGITS = REPO_ROOT.parent / "shared" / "data" / "free-spoken-digit-dataset" / "recordings"
requires_real_digits = pytest.mark.skipif(
    not REAL_DIGITS.is_dir(), reason=f"the real Free Spoken Digit Dataset is not at {REAL_DIGITS}"
)


def _clips(verification_run: dict) -> tuple[Path, list[Path]]:
    """The corpus folder of the run and two of its test clips of different speakers."""
    root = next(
        o.split("=", 1)[1] for o in verification_run["overrides"] if o.startswith("data.speech.root=")
    )
    corpus = Path(root) / "SpeechCommands" / "speech_commands_v0.02"
    names = (corpus / "testing_list.txt").read_text().split()
    first = names[0]
    other = next(
        name
        for name in names
        if name.split("_nohash_")[0].split("/")[1] != first.split("_nohash_")[0].split("/")[1]
    )
    return corpus, [corpus / first, corpus / other]


def test_verify_prints_the_score_and_the_decision_at_the_validation_threshold(
    verification_run: dict, tmp_path: Path
) -> None:
    _, (same, other) = _clips(verification_run)
    test_list = tmp_path / "tests.txt"
    test_list.write_text(f"{same}\n{other}\n")
    result = run_python(
        "verify.py",
        f"ckpt_path={verification_run['last_checkpoint']}",
        f"enroll={same}",
        f"test={test_list}",
        f"paths.log_dir={tmp_path / 'logs'}",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "the checkpoint's threshold at its validation EER" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("score")]
    assert len(lines) == 2
    assert lines[0].startswith("score +1.0000  same speaker")  # the enrolment file itself
    written = json.loads(next((tmp_path / "logs").rglob("verification.json")).read_text())
    assert written["tests"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert written["threshold"] == pytest.approx(verification_run["test_analysis"]["val_eer_threshold"])


def test_verify_refuses_an_unreadable_file_naming_it(verification_run: dict, tmp_path: Path) -> None:
    _, (same, _) = _clips(verification_run)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not audio")
    result = run_python(
        "verify.py",
        f"ckpt_path={verification_run['last_checkpoint']}",
        f"enroll={same}",
        f"test={broken}",
        f"paths.log_dir={tmp_path / 'logs'}",
        timeout=300,
    )
    assert result.returncode == 1
    assert f"test: cannot read {broken}" in result.stderr


def _folder_config(verification_run: dict, audio_dir: Path, layout: str, tmp_path: Path) -> OmegaConf:
    return OmegaConf.create(
        {
            "ckpt_path": verification_run["last_checkpoint"],
            "audio_dir": str(audio_dir),
            "layout": layout,
            "max_enrollments": 40,
            "trial_seed": 0,
            "paths": {"output_dir": str(tmp_path)},
        }
    )


@requires_real_digits
def test_folder_trials_score_the_six_real_speakers_of_the_digit_dataset(
    verification_run: dict, tmp_path: Path
) -> None:
    summary = score_folder(_folder_config(verification_run, REAL_DIGITS, "fsdd", tmp_path))
    assert summary["speakers"] == 6 and summary["recordings"] == 3000
    results = summary["results"]
    assert results["text_dependent"]["trials"] == results["text_independent"]["trials"] == 80
    assert 0.0 <= results["all"]["eer"] <= 1.0
    assert (tmp_path / "det_curve.png").is_file() and (tmp_path / "trial_scores.csv").is_file()


@requires_real_sample
def test_folder_trials_on_real_speech_commands_have_no_same_word_trials(
    verification_run: dict, tmp_path: Path
) -> None:
    # Each speaker of the sample says each word at most once: only text-independent trials exist.
    summary = score_folder(_folder_config(verification_run, REAL_SAMPLE, "speech_commands", tmp_path))
    results = summary["results"]
    assert results["text_dependent"]["trials"] == 0
    assert results["text_independent"]["trials"] == results["all"]["trials"] > 0


def test_folder_trials_refuse_names_outside_the_layout(verification_run: dict, tmp_path: Path) -> None:
    corpus, _ = _clips(verification_run)
    with pytest.raises(ValueError, match="is not named as layout=fsdd"):
        score_folder(_folder_config(verification_run, corpus / "yes", "fsdd", tmp_path))
