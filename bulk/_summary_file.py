"""Where ``--summary-json`` goes: only a regular file is ever replaced.

A regular file (or a name not taken yet) is written whole: a temporary file beside it,
renamed over it, so a reader never sees half a summary. A symlink is written through: the
file it names is written (or made), the link stays. A FIFO, a character device (``/dev/null``,
a terminal) or anything else that is not a regular file is opened for writing where it is and
written, never renamed over: renaming would put a regular file in place of the node (as
root, in place of the system's ``/dev/null``). A name for one of this process's descriptors
(``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``, or a symlink to one) is written through
that descriptor, whatever it is open on: ``--summary-json /dev/stdout > out.txt`` puts the
summary in ``out.txt`` among the run's other output, in order.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from bulk import _report
from bulk._errors import ConfigError

_DESCRIPTOR = re.compile(r"/(?:proc/(self|\d+)/fd|dev/fd)/(\d+)")


def _descriptor(path: Path) -> int | None:
    """This process's descriptor that ``path`` or a symlink on its way names, if any."""
    for _ in range(40):  # the kernel's own limit on symlinks followed
        named = _DESCRIPTOR.fullmatch(os.path.abspath(path))
        if named is not None and named[1] in (None, "self", str(os.getpid())):
            return int(named[2])
        if not path.is_symlink():
            return None
        path = path.parent / os.readlink(path)
    return None


def _special(path: Path) -> bool:
    """True when ``path`` is written in place: it (followed through symlinks) exists and is
    not a regular file or a directory (a FIFO, a device, a socket), or it names an open
    descriptor."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return (not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)) or _descriptor(path) is not None


def _target(path: Path) -> Path:
    """The regular file to replace for ``path``: the file its symlinks name, else itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_summary_path(path: Path) -> None:
    """Refuse, before anything is read, a ``--summary-json`` path bulk could not write at
    the end (:class:`ConfigError`)."""
    if _special(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"--summary-json {path}: cannot be written (no permission)")
        return  # opened in place at the end: no file is made beside it
    _report.check_folder(_target(path), "--summary-json")


def write_summary(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as the module's docstring says; :class:`ConfigError` when
    it cannot be written."""
    if _special(path):
        try:
            descriptor = _descriptor(path)
            if descriptor is not None:  # its offset, shared with what else writes there
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                fd = os.dup(descriptor)
            else:
                # no O_CREAT (never a new file where the node was), no O_NONBLOCK (a FIFO
                # waits for its reader, as a shell's ">" does)
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
            with open(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the summary ({exc.strerror})") from None
        return
    _report.write_text(_target(path), text, "the summary")
