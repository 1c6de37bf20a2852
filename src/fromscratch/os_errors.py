"""The user's disk and permission errors (a full disk, a file-size limit, a read-only folder) told apart from our
bugs, and said in one line naming the folder and what to do (config.cli prints it)."""

from __future__ import annotations

import errno
import os
import re
import sys

# Errors of the machine the user can fix (space, a file-size limit, permissions, a read-only or wrong kind of
# path), not of the code.
_USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                   errno.EISDIR}
_LOW_SPACE = 64 << 20  # bytes free at the output below which a failed write is taken for a full disk


def of_machine(err: BaseException) -> OSError | None:
    """The user's disk or permission error behind `err`, as an OSError, or None for anything else. The writers
    in Rust (tokenizers, safetensors) keep only the text "(os error 28)"; torch's serializer keeps not even that
    ("file write failed", "unexpected pos"): a failed write with almost no space left at the output is that."""
    artifacts = sys.modules.get(f"{__package__}.artifacts")  # loaded by every stage that writes an output
    writing = getattr(artifacts, "_writing", None)  # the <out>.tmp being written, if any
    seen = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _USER_OS_ERRORS:
            return seen
        code = re.search(r"os error (\d+)", str(seen))
        if code and int(code.group(1)) in _USER_OS_ERRORS:
            return OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(writing or "") or None)
        seen = seen.__cause__ or seen.__context__
    if writing is not None and writing.exists():
        try:
            free = os.statvfs(writing).f_bavail * os.statvfs(writing).f_frsize
        except OSError:
            return None
        if free < _LOW_SPACE:
            first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
            return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free >> 10} KiB free; "
                                         f"{type(err).__name__}: {first})", str(writing))
    return None


def message(err: OSError) -> str:
    what = f"{err.filename}: {err.strerror}" if err.filename else (err.strerror or str(err))
    fix = {errno.ENOSPC: "free some space or set output_dir on another disk",
           errno.EDQUOT: "free some space or set output_dir on another disk",
           errno.EFBIG: "raise the file-size limit (ulimit -f) or set output_dir on another disk",
           errno.EROFS: "set output_dir to a writable folder"}.get(err.errno, "fix the path or its permissions")
    artifacts = sys.modules.get(f"{__package__}.artifacts")
    tail = artifacts.restart_advice() if artifacts is not None else ""
    return f"{what} ({fix}, then rerun{tail})"
