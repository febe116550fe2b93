"""The data plane's on-disk copy of its last applied snapshot, so it can start and serve while
the control plane is down (Kong keeps the same in `dbless.lmdb`).

The file is gzip of `Snapshot.encode()`, written atomically (temporary file in the same folder,
fsync, rename) after each applied snapshot, so a crash leaves either the old or the new file. A
file that cannot be read or does not verify is ignored with a warning: the node then waits for
the control plane as if there were no cache.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from gateway.snapshot import Snapshot

log = logging.getLogger("lockgate.dp.cache")


class SnapshotCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> Snapshot | None:
        """The cached snapshot, or None if there is none or it is unusable (logged)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the snapshot cache %s: %s", self.path, exc)
            return None
        try:
            snapshot = Snapshot.decode(gzip.decompress(data))
        except (OSError, EOFError, ValueError) as exc:
            log.warning("ignoring the corrupt snapshot cache %s: %s", self.path, exc)
            return None
        return snapshot

    def save(self, snapshot: Snapshot, payload: bytes | None = None) -> None:
        """Write `snapshot` (or `payload`, its gzip-compressed encoding, if the caller has it)
        atomically. Thread-safe; callers keep saves in order."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    if payload is not None:
                        out.write(payload)
                    else:
                        _write_compressed(snapshot, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


def _write_compressed(snapshot: Snapshot, out: BinaryIO) -> None:
    """gzip of `snapshot.encode()`, compressed as it is encoded, entity by entity: a 10k-route
    snapshot (~9 MB of JSON) is never whole in memory, where its pages would stay."""
    with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=out) as compressed:
        for chunk in snapshot.encode_chunks():
            compressed.write(chunk)
