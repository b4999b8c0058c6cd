"""Offline Mandarin speech (离线语音合成) through libespeak-ng 1.52 from the ``espeakng-loader`` wheel.

Owns: the ctypes binding and the one thread that may call the library. libespeak-ng is process-global
state (one voice, one callback, one output buffer), so every call runs on a single dedicated worker
thread, and the ctypes callback object is kept alive for the life of the process.

Must never: call the library from any other thread, block the event loop, or touch the network.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from broadcast.audio.engines import Speech, SpeechFormat, TtsError, TtsFailure

# espeak_AUDIO_OUTPUT / options / parameters / flags from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_EE_OK = 0
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Library:
    """The loaded library. Only ever touched from ``_Library.executor``'s single thread."""

    executor: ClassVar[ThreadPoolExecutor] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak-ng")
    _instance: ClassVar[_Library | None] = None
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self.lib: Any = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetParameter.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_Synth.restype = ctypes.c_int
        self.lib.espeak_Synchronize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT))
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = rate
        self._chunks: list[bytes] = []
        # Kept on the instance (which lives for the process) so the C side never calls a freed thunk.
        self._callback = _SynthCallback(self._on_samples)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_samples(self, wav: Any, numsamples: int, _events: Any) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0  # 0 = continue synthesis

    @classmethod
    def get(cls) -> _Library:
        with cls._guard:
            if cls._instance is None:
                cls._instance = _Library()
            return cls._instance

    def synth(self, text: str, voice: str, rate: int, pitch: int, volume: int) -> bytes:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, volume, 0)
        raw = text.encode("utf-8")
        buf = ctypes.create_string_buffer(raw)
        self._chunks = []
        err = self.lib.espeak_Synth(buf, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise OSError(f"espeak_Synth returned {err}")
        self.lib.espeak_Synchronize()
        out = b"".join(self._chunks)
        self._chunks = []
        return out


class EspeakEngine:
    """Offline Mandarin TTS. Voice "cmn" (Mandarin), "yue" (Cantonese) or any espeak-ng voice name."""

    name = "espeak-ng"

    def __init__(self, voice: str = "cmn", *, rate: int = 150, pitch: int = 50, volume: int = 100) -> None:
        self.voice = voice
        self.rate = rate
        self.pitch = pitch
        self.volume = volume

    @property
    def settings(self) -> str:
        return f"rate={self.rate};pitch={self.pitch};volume={self.volume}"

    async def synth(self, text: str) -> Speech:
        loop = asyncio.get_running_loop()
        try:
            pcm, rate = await loop.run_in_executor(_Library.executor, self._synth_blocking, text)
        except (OSError, ValueError) as e:
            raise TtsError(self.name, TtsFailure.UNAVAILABLE, str(e)) from e
        except Exception as e:  # a ctypes fault must not take the renderer down with it
            raise TtsError(self.name, TtsFailure.INTERNAL, repr(e)) from e
        if text.strip() and not pcm:
            raise TtsError(self.name, TtsFailure.EMPTY, f"no audio for {len(text)} characters")
        return Speech(pcm, SpeechFormat.PCM_S16LE, rate, self.name, self.voice)

    def _synth_blocking(self, text: str) -> tuple[bytes, int]:
        lib = _Library.get()
        return lib.synth(text, self.voice, self.rate, self.pitch, self.volume), lib.sample_rate
