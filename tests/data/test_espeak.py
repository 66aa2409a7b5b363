"""The ctypes wrapper over libespeak-ng: audible, repeatable speech with word events."""

from __future__ import annotations

import numpy as np
import pytest

from src.data.synthesis import espeak


def test_yes_is_audible_and_about_half_a_second() -> None:
    synthesis = espeak.synthesize("yes", "en-us")
    assert synthesis.sample_rate == espeak.sample_rate() == 22050
    assert synthesis.samples.dtype == np.float32 and synthesis.samples.ndim == 1
    assert 0.2 < len(synthesis.samples) / synthesis.sample_rate < 1.0
    assert 0.1 < np.abs(synthesis.samples).max() <= 1.0
    assert np.sqrt(np.mean(synthesis.samples**2)) > 0.01


def test_voices_and_parameters_change_the_audio() -> None:
    male = espeak.synthesize("yes", "en-us+m1").samples
    female = espeak.synthesize("yes", "en-gb-scotland+f3").samples
    assert len(male) != len(female) or not np.allclose(male, female, atol=0.05)
    slow = espeak.synthesize("seven", "en-us", rate=120).samples
    fast = espeak.synthesize("seven", "en-us", rate=240).samples
    assert len(fast) < 0.8 * len(slow)


def test_same_call_gives_identical_samples_whatever_was_spoken_before() -> None:
    first = espeak.synthesize("backward", "en-us+m3", rate=130, pitch=60).samples
    espeak.synthesize("happy house", "en-029+f2")
    again = espeak.synthesize("backward", "en-us+m3", rate=130, pitch=60).samples
    np.testing.assert_array_equal(first, again)


def test_word_events_mark_each_word() -> None:
    synthesis = espeak.synthesize("yes no", "en-us")
    words = [event for event in synthesis.events if event.type == espeak.EVENT_WORD]
    assert [(w.text_position, w.length, w.number) for w in words] == [(1, 3, 1), (5, 2, 2)]
    assert 0 <= words[0].audio_position < words[1].audio_position
    assert 0 < words[1].sample < len(synthesis.samples)
    end = [event for event in synthesis.events if event.type == espeak.EVENT_END]
    assert end and end[-1].audio_position * synthesis.sample_rate / 1000 == pytest.approx(
        len(synthesis.samples), rel=0.05
    )


def test_unknown_voice_is_an_error() -> None:
    with pytest.raises(ValueError, match="no voice 'xx-nonexistent'"):
        espeak.synthesize("yes", "xx-nonexistent")


def test_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import espeakng_loader

    monkeypatch.setattr(espeak, "_engine", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(RuntimeError, match=r"cannot load libespeak-ng .*pip install espeakng-loader"):
        espeak.synthesize("yes")
