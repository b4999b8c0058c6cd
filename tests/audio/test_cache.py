"""AudioCache: content addressing, digest validation, key index, LRU eviction with pins, restarts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from broadcast.audio.cache import AudioCache, content_key
from broadcast.model import AudioRef


def blob(n: int, fill: int) -> bytes:
    return bytes([fill]) * n


def test_put_is_content_addressed(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path)
    data = b"ID3-not-really-mp3" * 10
    digest, path = cache.put(data, "mp3")
    assert digest == hashlib.sha256(data).hexdigest()
    assert path == tmp_path / f"{digest}.mp3"
    assert path.read_bytes() == data
    assert cache.path_for(digest, "mp3") == path
    assert cache.path_for(digest, "wav") is None  # same bytes were never stored as wav
    again, _ = cache.put(data, "mp3")
    assert again == digest and cache.total_bytes == len(data)


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "../" + "a" * 61,
        "A" * 64,  # upper case is not how we name files
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 64 + "/../x",
        "a" * 32 + "\x00" + "a" * 31,
    ],
)
def test_path_for_refuses_bad_digests(tmp_path: Path, digest: str) -> None:
    cache = AudioCache(tmp_path)
    cache.put(b"something", "mp3")
    assert cache.path_for(digest, "mp3") is None


def test_path_for_refuses_bad_format(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path)
    digest, _ = cache.put(b"abc", "mp3")
    for fmt in ("exe", "mp3/../x", "", "MP3"):
        assert cache.path_for(digest, fmt) is None
    with pytest.raises(ValueError):
        cache.put(b"abc", "exe")


def test_key_index_finds_earlier_audio_and_survives_restart(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path)
    digest, _ = cache.put(b"programme", "mp3")
    key = content_key(engine="e", voice="v", text="t")
    assert cache.lookup(key) is None
    ref = AudioRef(digest, "mp3", 1.5, engine="e", voice="v")
    cache.bind(key, ref)
    assert cache.lookup(key) == ref
    reopened = AudioCache(tmp_path)
    assert reopened.lookup(key) == ref
    assert reopened.lookup(content_key(engine="e", voice="v", text="other")) is None
    assert reopened.lookup("not-a-key") is None


def test_lookup_forgets_keys_whose_file_is_gone(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=100)
    d1, _ = cache.put(blob(60, 1), "mp3")
    key = content_key(n=1)
    cache.bind(key, AudioRef(d1, "mp3", 1.0))
    cache.put(blob(60, 2), "mp3")  # evicts d1
    assert cache.path_for(d1, "mp3") is None
    assert cache.lookup(key) is None


def test_lru_eviction_keeps_recently_used_and_pinned(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=300)
    a, _ = cache.put(blob(100, 1), "mp3")
    b, _ = cache.put(blob(100, 2), "mp3")
    c, _ = cache.put(blob(100, 3), "mp3")
    assert cache.path_for(a, "mp3") is not None  # a is now the most recently used; b the least
    d, _ = cache.put(blob(100, 4), "mp3")
    assert cache.path_for(b, "mp3") is None and not (tmp_path / f"{b}.mp3").exists()
    assert cache.digests() == {a, c, d}
    assert cache.total_bytes <= 300

    with cache.pinned(c):  # c is least recently used but in use: the next eviction takes a instead
        e, _ = cache.put(blob(100, 5), "mp3")
        assert cache.digests() == {c, d, e}
    cache.pin(d)
    cache.pin(e)
    cache.put(blob(250, 6), "mp3")  # cannot get under the limit without unpinned victims
    assert {d, e} <= cache.digests()
    cache.unpin(d)  # unpinning lets the overdue eviction happen
    assert d not in cache.digests()
    assert e in cache.digests()


def test_new_file_is_never_its_own_victim(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=100)
    big, path = cache.put(blob(500, 9), "wav")
    assert path.exists() and cache.path_for(big, "wav") == path


def test_restart_keeps_lru_order_and_cleans_temp_files(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1000)
    a, _ = cache.put(blob(100, 1), "mp3")
    b, _ = cache.put(blob(100, 2), "mp3")
    assert cache.path_for(a, "mp3")  # a newer than b
    (tmp_path / ".tmp-deadbeef").write_bytes(b"half written")
    (tmp_path / "README.txt").write_text("not audio")
    reopened = AudioCache(tmp_path, max_bytes=250)
    assert not (tmp_path / ".tmp-deadbeef").exists()
    assert (tmp_path / "README.txt").exists()  # foreign files are left alone and not served
    assert reopened.digests() == {a, b}
    reopened.put(blob(100, 3), "mp3")
    assert reopened.digests() == {a, hashlib.sha256(blob(100, 3)).hexdigest()}
