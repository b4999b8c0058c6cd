"""CAP parsing shortcuts: embedded audio checked at parse time but decoded on first use, the Base64
pre-check agreeing with the decoder, and dataclasses built without ``__init__`` equal to built ones."""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import pickle
import random

import pytest

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.model import CapResource, check_base64, decode_base64
from broadcast.sources.cap.parse import parse_cap
from tests.sources.cap_doc import CORPUS, alert, info

AUDIO = bytes(range(256)) * 40


def _with_audio(b64: str, *, twice: bool = False) -> bytes:
    res = (
        "<resource><resourceDesc>预警音频</resourceDesc><mimeType>audio/mpeg</mimeType>"
        f"<derefUri>{b64}</derefUri></resource>"
    )
    return alert(info(extra=res) + (info(extra=res) if twice else ""))


def _wrapped(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def test_audio_is_decoded_on_first_use_only() -> None:
    res = parse_cap(_with_audio(_wrapped(AUDIO))).infos[0].resources[0]
    assert res._deref is None  # not decoded by the parser
    assert "not decoded" in repr(res)
    assert res.deref_uri == AUDIO
    assert res._deref == AUDIO  # cached
    assert res.deref_uri is res.deref_uri


def test_lazy_resource_compares_hashes_copies_like_an_eager_one() -> None:
    infos = parse_cap(_with_audio(_wrapped(AUDIO), twice=True)).infos
    a, b = infos[0].resources[0], infos[1].resources[0]
    assert a == b and b._deref is None  # same text: equal without decoding
    eager = CapResource("预警音频", "audio/mpeg", deref_uri=AUDIO)
    assert a == eager and hash(a) == hash(eager)
    assert a != CapResource("预警音频", "audio/mpeg", deref_uri=AUDIO[:-1])
    assert pickle.loads(pickle.dumps(b)) == eager
    assert copy.deepcopy(eager) == eager
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.mime = "audio/wav"


def test_bad_base64_still_refused_at_parse_time() -> None:
    for bad in ("QUJD@", "=QUJD", "QUJDR", "QU=JD", "QUJD\u00e9", "QQ=", "QUJ=="):
        with pytest.raises(CapError) as e:
            parse_cap(_with_audio(bad))
        assert e.value.kind is CapErrorKind.BAD_VALUE, bad


def _reference(raw: str) -> bytes | None:
    """The decoder the parser used before the pre-check existed (whitespace dropped, strict)."""
    try:
        if raw.isascii():
            packed = raw.encode("ascii").translate(None, b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")
        else:
            packed = "".join(raw.split()).encode("ascii")
        return binascii.a2b_base64(packed, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def test_check_base64_agrees_with_the_strict_decoder() -> None:
    rng = random.Random(2026)
    alphabet = "AQw9+/====  \n\t\x1f\u3000\u00e9-"
    for _ in range(20_000):
        if rng.random() < 0.5:
            raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        else:
            chars = list(base64.b64encode(rng.randbytes(rng.randint(0, 9))).decode())
            for _ in range(rng.randint(0, 3)):
                chars.insert(rng.randint(0, len(chars)), rng.choice(alphabet))
            raw = "".join(chars)
        raw = raw.strip()
        if not raw:
            continue
        expected = _reference(raw)
        assert check_base64(raw) is (expected is not None), repr(raw)
        if expected is not None:
            assert decode_base64(raw) == expected


def test_fast_built_dataclasses_equal_constructed_ones() -> None:
    a = parse_cap((CORPUS / "polygon-circle.xml").read_bytes())
    for i in a.infos:
        assert dataclasses.replace(i) == i and repr(dataclasses.replace(i)) == repr(i)
        for area in i.areas:
            assert dataclasses.replace(area) == area and hash(dataclasses.replace(area)) == hash(area)
