"""Audio production (制作播发): speech engines, attention tone, programme rendering, cache, uploads.

This package owns turning message text (or an operator's recording) into cached audio files that
adapters can send; it must never dispatch, schedule or talk to terminals.
"""

from broadcast.audio.cache import AudioCache, content_key, is_digest
from broadcast.audio.edge import KNOWN_VOICES, EdgeTtsEngine
from broadcast.audio.encode import EncodeOptions, OutputFormat
from broadcast.audio.engines import (
    AllEnginesFailed,
    EngineChain,
    EngineStatus,
    Speech,
    SpeechFormat,
    TtsEngine,
    TtsError,
    TtsFailure,
)
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.ffmpeg import FfmpegError
from broadcast.audio.render import AudioRenderer, RenderedAudio
from broadcast.audio.upload import UploadProblem, UploadRejected, ValidatedAudio, validate_upload

__all__ = [
    "KNOWN_VOICES",
    "AllEnginesFailed",
    "AudioCache",
    "AudioRenderer",
    "EdgeTtsEngine",
    "EncodeOptions",
    "EngineChain",
    "EngineStatus",
    "EspeakEngine",
    "FfmpegError",
    "OutputFormat",
    "RenderedAudio",
    "Speech",
    "SpeechFormat",
    "TtsEngine",
    "TtsError",
    "TtsFailure",
    "UploadProblem",
    "UploadRejected",
    "ValidatedAudio",
    "content_key",
    "is_digest",
    "validate_upload",
]
