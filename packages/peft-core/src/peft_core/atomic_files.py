"""Writing a set of files so that readers see all old or all new ones, never half of a save.

Each file is written to a temp file next to its target (created with mode 0666 so the umask
applies, like any file the user's program writes), flushed to disk, and renamed into place by
`WriteBatch.commit` in a fixed order. Renames are atomic one by one, not together: a crash between
two of them can leave a new weights file next to an old config. That case is caught on load, where
the weights file records the config it was saved with (see `config_binding`).

Savers into the same folder take an exclusive `flock` on the folder (released by the kernel when a
process dies), so two concurrent saves are serialised instead of interleaving their renames. Under
that lock, a save first removes the temp files that killed saves left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Any, Callable, Iterator

TEMP_SUFFIX = ".peft-tmp"
# Temp files of the adapter files (ours, and the `mkstemp` names of earlier versions).
_TEMP_NAME = re.compile(
    r"\.(adapter_config\.json|adapter_model\.safetensors|adapter_model\.bin|README\.md)\.[A-Za-z0-9_]+"
    r"(\.peft-tmp|\.tmp)"
)


def temp_path_for(path: str) -> str:
    """A fresh temp file name next to `path` (the file is not created)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{uuid.uuid4().hex[:16]}{TEMP_SUFFIX}")


def write_temp(path: str, write: Callable[[str], None]) -> str:
    """Call `write(tmp)` on a new temp file next to `path`, flush it to disk, return the temp path."""
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 & ~umask, as open() would
    try:
        mode = os.fstat(fd).st_mode & 0o7777
    finally:
        os.close(fd)
    try:
        write(tmp)
        if os.stat(tmp).st_mode & 0o7777 != mode:  # a writer that made its own file (safetensors: 0600)
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_directory(directory: str) -> None:
    """Make renames in `directory` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(directory: str) -> list[str]:
    """Delete the temp files that interrupted saves left in `directory`; returns their names.

    Call it only while holding `folder_lock(directory)`: a live save's temp files look the same.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if _TEMP_NAME.fullmatch(name):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed


@contextlib.contextmanager
def folder_lock(directories: list[str] | tuple[str, ...]) -> Iterator[None]:
    """Hold an exclusive advisory lock on each folder (in a fixed order, so savers can't deadlock).

    POSIX `flock` on the folder itself: no lock file is left behind, and a killed process releases it.
    Where `flock` is not available (Windows) or the file system refuses it, the save goes on
    unlocked; loading still refuses a mixed folder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    held: list[int] = []
    try:
        for directory in sorted({os.path.realpath(d) for d in directories}):
            try:
                fd = os.open(directory, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                os.close(fd)
                continue
            held.append(fd)
        yield
    finally:
        for fd in reversed(held):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class WriteBatch:
    """Stage files as temp files; `commit()` puts them all in place, `discard()` drops them.

    Renames happen in the order the files were staged, after the removals marked `before=True`
    (files that would shadow a new one, e.g. a safetensors file that would win over a new `.bin`)
    and before the other removals. Used as a context manager it commits on success and discards
    on any exception.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []  # (temp path, final path)
        self._removals: list[tuple[str, bool]] = []  # (path, remove before the renames)

    def write(self, path: str, write: Callable[[str], None]) -> None:
        self._staged.append((write_temp(path, write), path))

    def remove_on_commit(self, path: str, before: bool = False) -> None:
        """Delete `path` (if it exists) when the batch commits."""
        self._removals.append((path, before))

    def commit(self) -> None:
        directories = set()
        for path in [p for p, before in self._removals if before]:
            if os.path.isfile(path):
                os.unlink(path)
                directories.add(os.path.dirname(os.path.abspath(path)))
        for directory in sorted(directories):
            fsync_directory(directory)  # the shadowing file is gone before anything new appears
        for tmp, path in self._staged:
            os.replace(tmp, path)
            directories.add(os.path.dirname(os.path.abspath(path)))
        self._staged.clear()
        for path in [p for p, before in self._removals if not before]:
            if os.path.isfile(path):
                os.unlink(path)
                directories.add(os.path.dirname(os.path.abspath(path)))
        self._removals.clear()
        for directory in sorted(directories):
            fsync_directory(directory)

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()
        self._removals.clear()

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path: str, write: Callable[[str], None], batch: WriteBatch | None = None) -> None:
    """Call `write(tmp_path)`, then atomically rename the temp file onto `path` (or stage it in `batch`)."""
    if batch is not None:
        batch.write(path, write)
        return
    tmp = write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def atomic_write_text(path: str, text: str, batch: WriteBatch | None = None) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write, batch)
