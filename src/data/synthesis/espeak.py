"""Text-to-speech with eSpeak NG through ctypes, using the library shipped by ``espeakng_loader``.

The C API (``espeak-ng/speak_lib.h``) maps onto this module as follows:

* ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, espeakINITIALIZE_DONT_EXIT |
  espeakINITIALIZE_PHONEME_EVENTS)`` runs once per process, lazily, on the first :func:`synthesize`; it
  returns the native sample rate (22050 Hz for the shipped voices). The library keeps its state in
  globals, so this module does too. Phoneme events only add events: the samples are the same as without.
* ``espeak_SetSynthCallback(cb)``: in synchronous mode ``espeak_Synth`` calls ``cb(short *wav, int n,
  espeak_EVENT *events)`` repeatedly before it returns; the callback appends the samples and copies the
  event list, which ends with an event of type ``espeakEVENT_LIST_TERMINATED``. An ``espeakEVENT_PHONEME``
  event marks the start of a phoneme and names it in ``id.string`` (``char[8]``, an espeak mnemonic such
  as ``tS`` or ``'aI``, with its stress mark; not NUL-terminated when all 8 bytes are used).
* ``espeak_SetVoiceByName("en-us+f3")`` picks a voice (language file) and variant (``voices/!v/<name>``).
* ``espeak_SetParameter(param, value, 0)`` sets rate (words per minute), pitch and pitch range (0-100)
  and the gap between words (units of 10 ms); they persist, so every call sets all of them.
* ``espeak_ng_SetRandSeed(0)`` before each synthesis makes its random parts (breath noise) repeatable.

espeak-ng also keeps synthesis state in C statics that carry over from one utterance to the next (pitch
flutter phase, automatic gain, glottal cycle count), so the same call gives slightly different samples
depending on what was spoken before. To make :func:`synthesize` a pure function of its arguments, it
first restores the state of a freshly loaded library: ``espeak_Terminate``, unload (``dlclose``), load
and initialise again (about 2 ms; skipped for the first synthesis, and with ``reset_state=False``). This
only works if nothing else in the process holds the library open.
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_PHONEME_EVENTS = 0x0001
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE, ESPEAK_WORDGAP = 1, 3, 4, 7
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_END, EVENT_PHONEME = 0, 1, 2, 5, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``: the C struct handed to the synthesis callback."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class EspeakEvent:
    """One synthesis event: ``type`` is an ``espeakEVENT_*`` code, ``audio_position`` is in ms and
    ``sample`` is the offset in samples at the native rate where the event happens in the audio.

    ``number`` is the word or sentence number of ``EVENT_WORD`` / ``EVENT_SENTENCE`` events (else 0);
    ``phoneme`` is the espeak mnemonic of ``EVENT_PHONEME`` events (else ``""``).
    """

    type: int
    text_position: int
    length: int
    audio_position: int
    sample: int
    number: int
    phoneme: str = ""


@dataclass(frozen=True)
class Synthesis:
    """Audio ``samples`` of shape ``(time,)``, float32 in [-1, 1], at ``sample_rate``, and the events."""

    samples: np.ndarray
    sample_rate: int
    events: list[EspeakEvent]


class _Engine:
    """The process-wide library handle, its sample rate and the buffers the callback fills."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            self.library_path = espeakng_loader.get_library_path()
            self.data_path = espeakng_loader.get_data_path().encode()
            self._load()
        except (ImportError, OSError, RuntimeError) as error:
            raise RuntimeError(
                f"cannot load libespeak-ng from the espeakng-loader package ({error}); "
                "install it with `pip install espeakng-loader==0.2.4`"
            ) from error
        self.chunks: list[np.ndarray] = []
        self.events: list[EspeakEvent] = []

    def _load(self) -> None:
        self.lib = ctypes.CDLL(self.library_path)
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
        self.lib.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            self.data_path,
            ESPEAK_INITIALIZE_DONT_EXIT | ESPEAK_INITIALIZE_PHONEME_EVENTS,
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with data path {self.data_path.decode()}")
        self.callback = _SynthCallback(self._collect)  # kept referenced: the library holds a raw pointer
        self.lib.espeak_SetSynthCallback(self.callback)
        self.used = False

    def reset(self) -> None:
        """Free the library's memory, unload it and load it again, so its statics start afresh."""
        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)
        self._load()

    def _collect(self, wav: ctypes._Pointer, num_samples: int, events: ctypes._Pointer) -> int:
        if wav and num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            number = e.id.number if e.type in (EVENT_WORD, EVENT_SENTENCE) else 0
            # A c_char array field reads as bytes up to the first NUL, or all 8 bytes without one.
            phoneme = e.id.string.decode("utf-8", "replace") if e.type == EVENT_PHONEME else ""
            self.events.append(
                EspeakEvent(e.type, e.text_position, e.length, e.audio_position, e.sample, number, phoneme)
            )
            i += 1
        return 0  # 0 = continue synthesis


_engine: _Engine | None = None
_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def sample_rate() -> int:
    """The native output rate of espeak-ng (initialises the library on first use)."""
    with _lock:
        return _get_engine().sample_rate


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    reset_state: bool = True,
) -> Synthesis:
    """Speak ``text`` with ``voice`` (``"language[+variant]"``, e.g. ``"en-gb-scotland+m3"``).

    ``rate`` is in words per minute (80-450), ``pitch`` and ``pitch_range`` are 0-100 (50 is the voice's
    own), ``word_gap`` adds pauses between words in units of 10 ms. With ``reset_state=False`` the
    synthesis continues from the state the previous one left, which is faster but makes the samples
    depend on what this process spoke before. Returns the audio at the native rate.
    """
    with _lock:
        engine = _get_engine()
        if engine.used and reset_state:
            engine.reset()
        engine.used = True
        lib = engine.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in (
            (ESPEAK_RATE, rate),
            (ESPEAK_PITCH, pitch),
            (ESPEAK_RANGE, pitch_range),
            (ESPEAK_WORDGAP, word_gap),
        ):
            if lib.espeak_SetParameter(parameter, value, 0) != 0:
                raise ValueError(f"espeak_SetParameter({parameter}, {value}) failed")
        engine.chunks, engine.events = [], []
        lib.espeak_ng_SetRandSeed(0)
        data = text.encode()
        status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        samples = np.concatenate([np.zeros(0, np.int16), *engine.chunks]).astype(np.float32) / 32768.0
        return Synthesis(samples, engine.sample_rate, engine.events)
