"""Content-addressed audio cache on disk (音频缓存).

Owns: the directory of rendered and uploaded audio. Media files are named ``<digest>.<fmt>`` where the
digest is the sha256 hex of the file's bytes, so a URL built from a digest always serves exactly those
bytes. A second index maps a *content key* (hash of engine, voice, settings, text, options) to the
``AudioRef`` made from it, so rendering the same thing again costs nothing. Writes are atomic
(temp file + rename); the total size is bounded by LRU eviction that never removes a pinned file; the
last-use order lives in file mtimes, so it survives restarts.

Must never: trust a digest or format it did not validate (the web layer serves paths from here), keep a
half-written file under a final name, or evict a file that is pinned. Methods are synchronous and safe
from any thread; async callers should use ``asyncio.to_thread`` for ``put``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from broadcast.model import AudioRef

log = logging.getLogger(__name__)

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
FORMATS = frozenset({"mp3", "wav"})
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_TMP_PREFIX = ".tmp-"


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.match(value))


def content_key(**parts: object) -> str:
    """A stable sha256 hex over named parts (json with sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class _Entry:
    size: int
    last_used: float


class AudioCache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("cache max_bytes must be positive")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._keys_dir = self.root / "keys"
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}  # file name -> size, last use
        self._pins: dict[str, int] = {}  # digest -> pin count
        self._last_stamp = 0.0
        self.root.mkdir(parents=True, exist_ok=True)
        self._keys_dir.mkdir(exist_ok=True)
        self._scan()

    # -- queries -------------------------------------------------------------------------------------

    def path_for(self, digest: str, fmt: str) -> Path | None:
        """The file for (digest, fmt), or None if the digest/format is malformed or the file is absent."""
        if not is_digest(digest) or fmt not in FORMATS:
            return None
        name = f"{digest}.{fmt}"
        with self._lock:
            if name not in self._entries:
                return None
            self._touch(name)
        return self.root / name

    def lookup(self, key: str) -> AudioRef | None:
        """The audio previously bound to content key ``key``, if its file is still here."""
        if not is_digest(key):
            return None
        rec = self._keys_dir / f"{key}.json"
        try:
            ref = AudioRef(**json.loads(rec.read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if self.path_for(ref.digest, ref.format) is None:
            with contextlib.suppress(OSError):
                rec.unlink()
            return None
        return ref

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def digests(self) -> set[str]:
        with self._lock:
            return {name.split(".", 1)[0] for name in self._entries}

    # -- writes --------------------------------------------------------------------------------------

    def put(self, data: bytes, fmt: str) -> tuple[str, Path]:
        """Store ``data``; return (sha256 hex digest, path). Evicts least-recently-used unpinned files."""
        if fmt not in FORMATS:
            raise ValueError(f"unsupported audio format {fmt!r}; expected one of {sorted(FORMATS)}")
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest}.{fmt}"
        path = self.root / name
        with self._lock:
            known = name in self._entries
        if not known:
            self._atomic_write(path, data)
        with self._lock:
            self._entries[name] = _Entry(len(data), 0.0)
            self._touch(name)
            self._evict(keep=name)
        return digest, path

    def bind(self, key: str, ref: AudioRef) -> None:
        """Remember that content key ``key`` rendered to ``ref`` (its file must already be stored)."""
        if not is_digest(key) or not is_digest(ref.digest):
            raise ValueError("content key and digest must be 64 lower-case hex characters")
        payload = json.dumps(asdict(ref), ensure_ascii=False).encode("utf-8")
        self._atomic_write(self._keys_dir / f"{key}.json", payload)

    # -- pinning -------------------------------------------------------------------------------------

    def pin(self, digest: str) -> None:
        """Protect every format of ``digest`` from eviction until a matching ``unpin``."""
        with self._lock:
            self._pins[digest] = self._pins.get(digest, 0) + 1

    def unpin(self, digest: str) -> None:
        with self._lock:
            n = self._pins.get(digest, 0) - 1
            if n > 0:
                self._pins[digest] = n
            else:
                self._pins.pop(digest, None)
            self._evict(keep=None)

    @contextlib.contextmanager
    def pinned(self, digest: str) -> Iterator[None]:
        self.pin(digest)
        try:
            yield
        finally:
            self.unpin(digest)

    # -- internals (call with self._lock held where noted) ------------------------------------------

    def _scan(self) -> None:
        for p in self.root.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    p.unlink()  # a write interrupted by a crash
                continue
            stem, _, ext = p.name.partition(".")
            if p.is_file() and is_digest(stem) and ext in FORMATS:
                st = p.stat()
                self._entries[p.name] = _Entry(st.st_size, st.st_mtime)
                self._last_stamp = max(self._last_stamp, st.st_mtime)
        for p in self._keys_dir.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    p.unlink()
        with self._lock:
            self._evict(keep=None)

    def _touch(self, name: str) -> None:
        """Mark ``name`` most recently used (lock held). Stamps strictly increase so order is exact."""
        stamp = max(time.time(), self._last_stamp + 1e-3)
        self._last_stamp = stamp
        self._entries[name].last_used = stamp
        with contextlib.suppress(OSError):
            os.utime(self.root / name, (stamp, stamp))

    def _evict(self, keep: str | None) -> None:
        """Remove least-recently-used unpinned files until under the limit (lock held)."""
        total = sum(e.size for e in self._entries.values())
        if total <= self.max_bytes:
            return
        for name, entry in sorted(self._entries.items(), key=lambda kv: kv[1].last_used):
            if total <= self.max_bytes:
                break
            if name == keep or self._pins.get(name.split(".", 1)[0]):
                continue
            try:
                (self.root / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("could not evict cached audio %s: %s", name, e)
                continue
            del self._entries[name]
            total -= entry.size
            log.info("evicted cached audio %s (%d bytes)", name, entry.size)

    def _atomic_write(self, path: Path, data: bytes) -> None:
        tmp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
