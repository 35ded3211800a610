"""An append-only local spool of accepted usage records, for hard crashes.

A graceful stop (SIGTERM) flushes the in-memory queue; the spool is for the
rest: SIGKILL, the OOM killer, a crash.  Each accepted record is written with
one unbuffered ``os.write`` before ``record()`` returns, so it sits in the
kernel's page cache even if the process dies the next instant (no fsync: a
power cut may still lose the last seconds, and fsync per call would cost
milliseconds).

Files are segments named ``<key>.<owner>.<n>.jsonl``.  A process holds an
exclusive ``flock`` on each segment it owns until every record in it is in the
database, then deletes it.  A segment nobody holds a lock on belongs to a dead
process: it is replayed into the database (records carry their id, so a record
already written is skipped) and deleted.  ``spill`` writes records that could
not be kept in memory or written at shutdown to an unlocked file, which the
same replay picks up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; elsewhere every foreign segment is treated as orphaned
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("polyroute.usage")
SEGMENT_BYTES = 1 << 20  # rotate after 1 MiB (about 2,000 records)


def spool_key(url: str, table: str) -> str:
    """Files of one (database, table) pair: a spool dir may serve several stores."""
    return hashlib.sha256(f"{url}\0{table}".encode()).hexdigest()[:12]


def _lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class Spool:
    def __init__(self, directory: Path, key: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.key = key
        self.segment_bytes = segment_bytes
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fds: dict[int, int] = {}  # own segments not yet deleted -> fd (holds the lock)
        self._seq = 0
        self._spills = 0
        self.current = -1
        self._fd = -1
        self._size = 0
        self.failed = False
        self.closed = False
        self.rotate()

    def _path(self, n: int) -> Path:
        return self.dir / f"{self.key}.{self.owner}.{n:06d}.jsonl"

    def append(self, line: bytes) -> int:
        """Write one line; the segment number, or -1 when the disk refused it."""
        try:
            os.write(self._fd, line)
        except OSError as exc:
            if not self.failed:
                log.error("usage spool write failed (%s); records stay in memory only", exc)
            self.failed = True
            return -1
        self._size += len(line)
        return self.current

    @property
    def full(self) -> bool:
        return self._size >= self.segment_bytes

    def rotate(self) -> None:
        """Start a new segment; the old one stays locked until released."""
        self._seq += 1
        fd = os.open(self._path(self._seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _lock(fd)
        self._fds[self._seq] = fd
        self.current, self._fd, self._size = self._seq, fd, 0

    def release(self, below: int) -> None:
        """Delete own segments numbered below ``below``: all their records are stored."""
        for n in [n for n in self._fds if n < below and n != self.current]:
            self._drop(n)

    def _drop(self, n: int) -> None:
        fd = self._fds.pop(n)
        try:
            self._path(n).unlink(missing_ok=True)
        finally:
            os.close(fd)

    def close(self, delete: bool) -> None:
        """Close every segment; ``delete`` when all their records are stored."""
        for n in list(self._fds):
            if delete:
                self._drop(n)
            else:
                os.close(self._fds.pop(n))
        self._fd = -1
        self.closed = True

    def spill(self, lines: list[bytes]) -> Path:
        """Records that cannot stay in memory: an unlocked file, replayed later."""
        self._spills += 1
        path = self.dir / f"{self.key}.spill-{self.owner}-{self._spills}.jsonl"
        with open(path, "ab") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        return path

    def orphans(self) -> Iterator[tuple[Path, int]]:
        """Segments and spills of this key that no live process holds, each
        locked (fd returned) while the caller replays it."""
        own = {self._path(n) for n in self._fds}
        for path in sorted(self.dir.glob(f"{self.key}.*.jsonl")):
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # another process replayed it first
                continue
            if not _lock(fd) or not path.exists():
                os.close(fd)
                continue
            yield path, fd
