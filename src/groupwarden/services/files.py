"""Files the tool writes for its user (backups, exports): owner-only, replaced atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from groupwarden.domain.errors import BadInput


def write_private(path: Path, what: str, write: Callable[[TextIO], object]) -> None:
    """Write a file readable by its owner only, and put it at path in one rename.

    The temporary file is made next to path under a random name, created exclusively and
    never through a symlink (mkstemp: O_EXCL, O_NOFOLLOW, mode 0600), so a file or link
    someone left there beforehand is neither reused nor followed. The rename replaces a
    symlink at path itself, never the file it points to.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BadInput(f"cannot write {what} {path}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BadInput(f"cannot write {what} {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
