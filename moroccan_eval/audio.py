"""Audio files of speech suites: their duration, read from the file's header.

WAV is read with the standard library; FLAC, MP3, Ogg (Vorbis/Opus), M4A and the other
formats mutagen knows are read with mutagen (pure Python, headers only, no decoding).
"""

from __future__ import annotations

from pathlib import Path

AUDIO_FORMATS = "wav, flac, mp3, ogg, opus, m4a"


def audio_duration(path: Path) -> float:
    """The duration of an audio file in seconds; ``ValueError`` if it is not readable audio."""
    if path.suffix.lower() == ".wav":
        import wave

        try:
            with wave.open(str(path)) as wav:
                return float(wav.getnframes() / wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError):
            raise ValueError(f"{path.name} is not a readable WAV file") from None
    import mutagen

    try:
        audio = mutagen.File(str(path))
    except (mutagen.MutagenError, OSError, ValueError):
        audio = None
    length = getattr(getattr(audio, "info", None), "length", None)
    if not length:
        raise ValueError(f"{path.name} is not a readable audio file ({AUDIO_FORMATS})")
    return float(length)
