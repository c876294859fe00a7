"""Atomic writes: every folder or file this package writes is staged beside its target, then renamed into place.

A staging folder is a sibling of the target named `.lite-whisper-staging.<target name>.<random>` and holds a
marker file (with the writer's host and process id), so that one left behind by a killed run is recognised and
removed by the next write there, with a line on stderr saying so, rather than guessed at; one whose writer still
runs is left alone. On any error, Ctrl-C included, the staging folder is removed and the target is untouched.

`check_target` is the one rule for every command that writes a folder: it never replaces (`--overwrite`) or
writes into what the user gave as input, nor the current directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = ".lite-whisper-staging."
MARKER = ".lite-whisper-staging"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_marker(folder: Path) -> None:
    (folder / MARKER).write_text(f"{socket.gethostname()} {os.getpid()}\n")


def _writer_alive(marker: Path) -> bool:
    """Whether the process that wrote `marker` still runs (on this host; another host's is assumed alive)."""
    try:
        host, pid = marker.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False  # empty or unreadable: an older marker, or a run killed while writing it
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False  # this very process left it (an earlier call): nothing writes there now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(parent: str | Path) -> list[Path]:
    """Remove the staging folders that killed runs left in `parent` (prefix and marker both, writer gone),
    saying so on stderr; returns them. A staging folder of a run still going (another process) stays."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for path in sorted(parent.glob(PREFIX + "*")):
        if path.is_dir() and (path / MARKER).is_file() and not _writer_alive(path / MARKER):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            print(f"removed {path}: a staging folder left by an interrupted run", file=sys.stderr)
    return removed


def _overlaps(a: Path, b: Path) -> str | None:
    """How folder `a` relates to `b`: "is", "contains", "lies inside", or None."""
    if a == b:
        return "is"
    if a in b.parents:
        return "contains"
    if b in a.parents:
        return "lies inside"
    return None


def check_target(output: str | Path, *, inputs=(), containers=(), overwrite: bool = False,
                 flag: str = "--output", offer_overwrite: bool = True) -> Path:
    """The rule for every folder a command writes: `output` must not exist unless `overwrite`; it must not be,
    contain or lie inside any of `inputs` (what the user gave: a base model, calibration audio), nor be or
    contain any of `containers` (folders it may sit inside: the current directory, the model folder of
    export-onnx). An input may be a (label, path) pair, the label naming it in the error. Raises FileExistsError / ValueError naming the clash and the fix, before anything runs."""
    output = Path(output).expanduser()
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{flag} {output} exists and is not a folder: choose another {flag}")
    if output.exists() and not overwrite:
        hint = " or pass --overwrite" if offer_overwrite else " (or remove it)"
        raise FileExistsError(f"{output} already exists: choose another {flag}{hint}")
    out = output.resolve()
    named = [item if isinstance(item, tuple) else (str(item), item) for item in inputs if item is not None]
    checks = [(label, Path(p), False) for label, p in named] + [(str(p), Path(p), True) for p in containers]
    checks.append(("the current directory", Path.cwd(), True))
    for label, given, inside_ok in checks:
        given = given.expanduser()
        if not given.exists():
            continue
        relation = _overlaps(out, given.resolve())
        if relation is None or (inside_ok and relation == "lies inside"):
            continue
        raise ValueError(f"{flag} {output} overlaps {label} (it {relation} it), which must stay as it is "
                         f"(--overwrite would delete it): choose an {flag} folder outside it")
    return output


def replace_folder(new: Path, target: Path) -> None:
    """Move folder `new` to `target`; an existing `target` is swapped out first and removed after."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{target.name}.", suffix=".old", dir=target.parent))
    _write_marker(old)
    os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the previous folder back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it becomes `target` (replacing it if `overwrite`).

    The folder gets the usual permissions under the umask (mkdtemp makes it private) and loses its marker
    just before the rename.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists: remove it or choose another output folder")
    if target.exists():  # the last guard before a folder is replaced (the commands check their inputs first)
        check_target(target, overwrite=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)
    holder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{target.name}.", dir=target.parent))
    try:
        _write_marker(holder)
        staging = holder / target.name
        staging.mkdir()
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        replace_folder(staging, target)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically (a temporary sibling, then os.replace)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
