"""Output files of the command line: checked before any work, written without clobbering inputs.

- `check_outputs` refuses, before anything runs, an output that is one of the command's input
  files (or the same file as another output), an existing directory where a file is meant, a file
  where a directory is meant, a plot with an image format matplotlib cannot write, and a place
  that cannot be written (no permission, a parent that is a file).
- `write_output` turns a failure while writing (disk full, permissions changed meanwhile) into an
  `OutputError`: the command prints one line and exits with status 2, never a traceback with
  status 1 (which the commands reserve for "a check failed" or "an accuracy bar missed").

Files are written atomically by `mmljax._io`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class OutputError(ValueError):
    """An output file cannot be written, or would overwrite an input."""


def image_formats() -> tuple[str, ...]:
    """The file formats matplotlib's Agg backend writes (png, pdf, svg, ...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return tuple(sorted(FigureCanvasAgg.get_supported_filetypes()))


def plot_format(path: str, flag: str = "--plot") -> str:
    """The image format named by `path`'s extension, or an `OutputError` listing the valid ones."""
    name = os.path.basename(path)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") else ""
    formats = image_formats()
    if ext not in formats:
        what = f"unknown image format {ext!r}" if ext else "no file extension to tell the image format"
        raise OutputError(f"{flag} {path}: {what}; use one of {', '.join('.' + f for f in formats)}")
    return ext


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _writable_place(path: str, flag: str, directory: bool) -> None:
    """`path` can be created or replaced: its nearest existing ancestor is a writable directory."""
    if os.path.isdir(path) and not directory:
        raise OutputError(f"{flag} {path}: is a directory; give a file name")
    if os.path.exists(path) and not os.path.isdir(path) and directory:
        raise OutputError(f"{flag} {path}: is a file; give a directory (it is created if missing)")
    target = path if directory and os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    probe = target
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise OutputError(f"{flag} {path}: cannot create it: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: cannot write there: permission denied on {probe}")


def check_outputs(outputs: Iterable[tuple[str, str | None, str]], inputs: Iterable[str] = ()) -> None:
    """Refuse bad outputs before any work.

    **Arguments:** `outputs` triples `(flag, path or None, kind)` with kind "file", "plot" (an image
    file) or "directory"; `inputs` the files the command reads.

    **Raises:** `OutputError` naming the flag and the path.
    """
    inputs = [p for p in inputs if p]
    given = [(flag, path, kind) for flag, path, kind in outputs if path]
    for flag, path, kind in given:
        if not path.strip():
            raise OutputError(f"{flag}: empty path")
        for src in inputs:
            if _same_file(path, src):
                raise OutputError(
                    f"{flag} {path}: is an input file of this command; refusing to overwrite it — choose another name"
                )
        if kind == "plot":
            plot_format(path, flag)
        _writable_place(path, flag, kind == "directory")
    for i, (flag, path, _) in enumerate(given):
        for flag2, path2, _ in given[i + 1 :]:
            if _same_file(path, path2):
                raise OutputError(f"{flag} and {flag2} name the same file {path}; give each output its own name")


def write_output(flag: str, path: str, write: Callable[[], T]) -> T:
    """Run `write()`; an `OSError` becomes an `OutputError` naming the flag, the path and the reason."""
    try:
        return write()
    except OSError as e:
        reason = e.strerror or str(e)
        raise OutputError(f"{flag} {path}: cannot write it: {reason}") from e
