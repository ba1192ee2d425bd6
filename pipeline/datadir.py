"""The data dir is private: created 0700, and a looser existing one is reported.

It holds the store, the stored page images, spooled uploads and ``server.json`` (the
local token of a running server): everything a user ingested. Created with the default
umask (0755) any other user of the machine could read all of it. Every place that may
be the first to create the data dir goes through :func:`ensure_private_dir`; stages
that create subfolders below it then inherit a private parent.

A folder that already exists is the user's: when it is open to others we warn (once per
process and folder) and leave its mode alone, since the user may have shared it on
purpose (a group that runs the service); the files that carry secrets
(``server.json``) are 0600 on their own.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700

_warned: set[Path] = set()
_warned_lock = threading.Lock()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and any missing parents) with mode 0700; return it.

    The mode is set with ``chmod`` after ``mkdir`` as well, so a permissive umask
    cannot widen it; only folders this call created are changed.
    """
    path = Path(path).expanduser()
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue  # another process created it between the check and here
        os.chmod(folder, DIR_MODE)
    if not missing:
        warn_if_open(path)
    return path


def open_bits(path: Path) -> int:
    """The group/other permission bits of ``path`` (0 for a private folder)."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077


def warn_if_open(path: Path) -> None:
    try:
        bits = open_bits(path)
    except OSError:
        return
    if not bits:
        return
    with _warned_lock:
        if path in _warned:
            return
        _warned.add(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    log.warning(
        "the data dir %s is mode %03o: other users of this machine can read what is "
        "ingested there; run `chmod 700 %s` unless it is shared on purpose", path, mode, path
    )
