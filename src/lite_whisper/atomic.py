"""Atomic writes: every folder or file this package writes is staged beside its target, then renamed into place.

A staging folder is a sibling of the target named `.lite-whisper-staging.<target name>.<random>` and holds a
marker file, so that one left behind by a killed run is recognised (and removed by the next write there) rather
than guessed at. On any error, Ctrl-C included, the staging folder is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = ".lite-whisper-staging."
MARKER = ".lite-whisper-staging"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_staging(parent: str | Path) -> list[Path]:
    """Remove the staging folders that killed runs left in `parent` (prefix and marker both); returns them."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for path in parent.glob(PREFIX + "*"):
        if path.is_dir() and (path / MARKER).is_file():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def replace_folder(new: Path, target: Path) -> None:
    """Move folder `new` to `target`; an existing `target` is swapped out first and removed after."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{target.name}.", suffix=".old", dir=target.parent))
    (old / MARKER).touch()
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
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)
    holder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{target.name}.", dir=target.parent))
    try:
        (holder / MARKER).touch()
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
