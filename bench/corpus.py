"""The CAP benchmark corpus (基准测试用 CAP 语料): a seeded generator of varied CAP documents plus a manifest.

Owns: writing N documents (default 240) into a directory (a temp dir, or ``bench/.corpus`` which is not
committed) together with ``manifest.json`` that says, per file, what a correct parser must make of it:
``expect`` = "valid" (schema-valid CAP 1.1/1.2 any parser should accept), "lenient" (not schema-valid but
plainly broadcastable: no namespace, lower-case enumerations, times without offset…) or "invalid" (must be
refused: malformed, DTD/XXE, missing identifier, open polygon…), and for accepted ones the identifier,
the headlines and the number of polygon points. Never parses CAP itself, never touches the network.

Mix: CMA-style bilingual warnings (en-US + zh-CN, via `sim.cap_feed.cma_document`), polygons of 1,000 to
40,000 points, long Chinese texts, embedded audio (derefUri), CAP 1.1, eight other languages, GB18030 /
UTF-8 BOM / UTF-16 encodings, XML-DSig signature blocks, and the faults of real feeds. Sizes from ~1 KB
to ~1 MB.

    .venv/bin/python bench/corpus.py [--out bench/.corpus] [--count 240] [--seed 2026]
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broadcast.clock import BEIJING  # noqa: E402
from sim.cap_feed import EVENTS, STREETS, Colour, Reference, cma_document, identifier_at  # noqa: E402

NS12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS11 = "urn:oasis:names:tc:emergency:cap:1.1"
Expect = Literal["valid", "lenient", "invalid"]
DEFAULT_OUT = Path(__file__).resolve().parent / ".corpus"
ANNING = (24.919, 102.478)


@dataclass
class Entry:
    file: str
    kind: str
    expect: Expect
    size: int = 0
    identifier: str = ""
    headlines: list[str] = field(default_factory=list)
    polygon_points: int = 0  # total points over all polygons (closing point included)
    version: str = "1.2"
    languages: list[str] = field(default_factory=list)


@dataclass
class Doc:
    data: bytes
    entry: Entry


# --------------------------------------------------------------------------------------------- shapes


def ring(
    rng: random.Random, points: int, centre: tuple[float, float] = ANNING, radius: float = 0.15
) -> list[tuple[float, float]]:
    """A closed star-shaped ring of ``points`` points (the first repeated at the end)."""
    n = max(3, points - 1)
    out = []
    for i in range(n):
        r = radius * (0.6 + 0.4 * rng.random())
        a = 2 * math.pi * i / n
        out.append((round(centre[0] + r * math.sin(a), 6), round(centre[1] + r * math.cos(a), 6)))
    return [*out, out[0]]


def _headlines(data: bytes) -> list[str]:
    text = data.decode("utf-8")
    out, pos = [], 0
    while (start := text.find("<headline>", pos)) >= 0:
        end = text.index("</headline>", start)
        out.append(text[start + len("<headline>") : end].replace("&amp;", "&").replace("&lt;", "<"))
        pos = end
    return out


# ---------------------------------------------------------------------------------------- CMA style


def _cma(rng: random.Random, i: int, *, polygons: int = 0, points: int = 0, paragraphs: int = 0) -> Doc:
    sent = datetime(2025, 7, 1, 6, 0, tzinfo=BEIJING) + timedelta(minutes=7 * i)
    event = rng.choice(sorted(EVENTS))
    colour = rng.choice(list(Colour))
    msg_type: Literal["Alert", "Update", "Cancel"] = rng.choice(["Alert", "Alert", "Update", "Cancel"])
    refs = [Reference(identifier_at(sent - timedelta(hours=1)), sent - timedelta(hours=1))]
    areas = rng.sample(sorted(STREETS.items(), key=lambda kv: kv[0]), rng.randint(1, 4))
    shapes = [ring(rng, points) for _ in range(polygons)]
    circles = [(ANNING[0], ANNING[1], round(rng.uniform(2, 30), 1))] if rng.random() < 0.3 else []
    data = cma_document(
        sent=sent,
        event_zh=event,
        colour=colour,
        msg_type=msg_type,
        references=refs if msg_type != "Alert" else (),
        areas=[(name, code) for code, name in areas],
        polygons=shapes,
        circles=circles,
        extra_zh_paragraphs=paragraphs,
    )
    kind = "cma-polygon" if polygons else ("cma-long" if paragraphs else "cma")
    entry = Entry(
        file="",
        kind=kind,
        expect="valid",
        identifier=identifier_at(sent),
        headlines=_headlines(data),
        polygon_points=sum(len(s) for s in shapes) * 2,  # the shapes repeat in both info blocks
        languages=["en-US", "zh-CN"],
    )
    return Doc(data, entry)


# ------------------------------------------------------------------------------- generic, many languages

LANGS: dict[str, tuple[str, str, str]] = {  # language → (event, headline, description)
    "en-US": ("Flood", "Flash flood warning for the river valley", "Move to higher ground now."),
    "fr-FR": (
        "Inondation",
        "Alerte crue soudaine – vallée de la rivière",
        "Gagnez les hauteurs immédiatement.",
    ),
    "es-ES": ("Inundación", "Aviso de crecida repentina en el valle", "Diríjase a zonas altas ahora."),
    "ja-JP": ("洪水", "河川流域に洪水警報", "直ちに高い場所へ避難してください。"),
    "ko-KR": ("홍수", "하천 유역 홍수 경보", "즉시 높은 곳으로 대피하십시오."),
    "ru-RU": ("Наводнение", "Штормовое предупреждение о паводке", "Немедленно поднимитесь на возвышенность."),
    "ar-SA": ("فيضان", "تحذير من فيضان مفاجئ في الوادي", "توجهوا إلى المناطق المرتفعة فورا."),
    "bo-CN": ("ཆུ་ལོག", "ཆུ་ལོག་ཉེན་བརྡ།", "མྱུར་དུ་ས་མཐོ་སར་ཕྱིན་རོགས།"),
    "ii-CN": ("ꒉꌠ", "ꒉꌠꏦꏸ", "ꃅꄿꐨꌠꉬ"),
    "zh-CN": ("山洪", "安宁市水务局发布山洪灾害蓝色预警", "请沿河群众及时转移。"),
}


def _generic(
    rng: random.Random,
    i: int,
    *,
    ns: str | None = NS12,
    langs: Sequence[str] = ("en-US",),
    circle: bool = False,
    resource_bytes: int = 0,
    signature: bool = False,
    lower_enums: bool = False,
    naive_times: bool = False,
    sent_override: str | None = None,
) -> tuple[str, Entry]:
    sent = datetime(2025, 8, 1, 0, 0, tzinfo=BEIJING) + timedelta(minutes=11 * i)
    ident = f"GEN-{i:05d}-{rng.randrange(16**6):06x}"
    t = sent.isoformat(timespec="seconds")
    exp = (sent + timedelta(hours=6)).isoformat(timespec="seconds")
    if naive_times:
        t, exp = t[:19], exp[:19]
    status, msg, scope = ("actual", "alert", "public") if lower_enums else ("Actual", "Alert", "Public")
    infos = []
    headlines = []
    for lang in langs:
        event, headline, desc = LANGS[lang]
        headlines.append(headline)
        res = ""
        if resource_bytes:
            payload = base64.b64encode(rng.randbytes(resource_bytes)).decode("ascii")
            lines = "\n".join(payload[k : k + 76] for k in range(0, len(payload), 76))
            res = (
                "<resource><resourceDesc>audio</resourceDesc><mimeType>audio/mpeg</mimeType>"
                f"<size>{resource_bytes}</size><derefUri>{lines}</derefUri></resource>"
            )
        area = f"<circle>{ANNING[0]},{ANNING[1]} {rng.randint(1, 40)}</circle>" if circle else ""
        infos.append(
            f"<info><language>{lang}</language><category>Geo</category><category>Env</category>"
            f"<event>{escape(event)}</event><responseType>Evacuate</responseType>"
            f"<urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>"
            f"<effective>{t}</effective><expires>{exp}</expires><senderName>Water Bureau</senderName>"
            f"<headline>{escape(headline)}</headline><description>{escape(desc)}</description>"
            f"<instruction>{escape(desc)}</instruction><web>http://example.invalid/alerts/{ident}</web>"
            f"<parameter><valueName>EAS-ORG</valueName><value>WXR</value></parameter>{res}"
            f"<area><areaDesc>River valley</areaDesc>{area}"
            "<geocode><valueName>CPEAS Geographic Code</valueName><value>530181000000</value></geocode>"
            "</area></info>"
        )
    sig = (
        '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
        '<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        '<Reference URI=""><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        f"<DigestValue>{base64.b64encode(rng.randbytes(32)).decode()}</DigestValue></Reference></SignedInfo>"
        f"<SignatureValue>{base64.b64encode(rng.randbytes(256)).decode()}</SignatureValue></Signature>"
        if signature
        else ""
    )
    xmlns = f' xmlns="{ns}"' if ns else ""
    text = (
        f"<alert{xmlns}><identifier>{ident}</identifier><sender>water@anning.example</sender>"
        f"<sent>{sent_override or t}</sent><status>{status}</status><msgType>{msg}</msgType>"
        f"<source>bench</source><scope>{scope}</scope><code>IPAWSv1.0</code>"
        + "".join(infos)
        + sig
        + "</alert>"
    )
    version = "1.1" if ns == NS11 else "1.2"
    return text, Entry(
        "", "generic", "valid", identifier=ident, headlines=headlines, version=version, languages=list(langs)
    )


def _declared(text: str, encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{text}\n'


def _utf8(text: str) -> bytes:
    return _declared(text, "UTF-8").encode("utf-8")


# ------------------------------------------------------------------------------------------ the recipe


def _recipe(rng: random.Random) -> list[Callable[[int], Doc]]:
    def cma(i: int) -> Doc:
        return _cma(rng, i)

    def cma_poly(points: int, count: int = 1) -> Callable[[int], Doc]:
        return lambda i: _cma(rng, i, polygons=count, points=points)

    def cma_long(paragraphs: int) -> Callable[[int], Doc]:
        return lambda i: _cma(rng, i, paragraphs=paragraphs)

    def generic(
        kind: str, expect: Expect = "valid", encode: Callable[[str], bytes] = _utf8, **kw: object
    ) -> Callable[[int], Doc]:
        def make(i: int) -> Doc:
            text, entry = _generic(rng, i, **kw)  # type: ignore[arg-type]
            entry.kind, entry.expect = kind, expect
            return Doc(encode(text), entry)

        return make

    def broken(kind: str, mutate: Callable[[bytes], bytes]) -> Callable[[int], Doc]:
        def make(i: int) -> Doc:
            doc = _cma(rng, i)
            return Doc(mutate(doc.data), Entry("", kind, "invalid", languages=doc.entry.languages))

        return make

    def lang_pick() -> list[str]:
        return rng.sample(sorted(LANGS), rng.randint(1, 3))

    def multilingual(i: int) -> Doc:
        return generic("multilingual", langs=lang_pick())(i)

    dtd_laughs = (
        b'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>\n'
    )
    xxe = b'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'

    def strip_decl(data: bytes) -> bytes:
        return data.split(b"\n", 1)[1]

    recipe: list[Callable[[int], Doc]] = []
    recipe += [cma] * 50
    recipe += [cma_poly(p) for p in (1_000, 1_500, 2_000, 3_000, 5_000) for _ in range(4)]
    recipe += [cma_poly(p, 2) for p in (4_000, 8_000, 12_000) for _ in range(2)]
    recipe += [cma_poly(20_000), cma_poly(20_000)]  # ~1 MB each (the shapes are in both info blocks)
    recipe += [cma_long(n) for n in (20, 100, 400, 1_000, 3_000, 5_500) for _ in range(2)]
    recipe += [generic("cap11", ns=NS11, langs=["en-US"], circle=True) for _ in range(15)]
    recipe += [generic("cap11-zh", ns=NS11, langs=["zh-CN", "en-US"]) for _ in range(5)]
    recipe += [multilingual] * 30
    recipe += [
        generic("audio", langs=["zh-CN"], resource_bytes=n)
        for n in (2_000, 20_000, 120_000, 500_000)
        for _ in range(2)
    ]
    recipe += [generic("signed", langs=["zh-CN", "en-US"], signature=True) for _ in range(5)]
    recipe += [
        generic("gb18030", langs=["zh-CN"], encode=lambda t: _declared(t, "GB18030").encode("gb18030"))
        for _ in range(5)
    ]
    recipe += [
        generic("gbk-as-gb2312", langs=["zh-CN"], encode=lambda t: _declared(t, "GB2312").encode("gbk"))
        for _ in range(3)
    ]
    recipe += [
        generic("utf8-bom", langs=["zh-CN", "ja-JP"], encode=lambda t: codecs.BOM_UTF8 + _utf8(t))
        for _ in range(4)
    ]
    recipe += [
        generic("utf16", langs=["zh-CN", "ko-KR"], encode=lambda t: _declared(t, "UTF-16").encode("utf-16"))
        for _ in range(3)
    ]
    recipe += [generic("no-namespace", "lenient", ns=None, langs=["zh-CN"]) for _ in range(4)]
    recipe += [generic("lower-case-enums", "lenient", langs=["en-US"], lower_enums=True) for _ in range(3)]
    recipe += [generic("naive-times", "lenient", langs=["zh-CN"], naive_times=True) for _ in range(3)]
    recipe += [
        broken("truncated", lambda d: d[: len(d) * 2 // 3]),
        broken("truncated", lambda d: d[: len(d) // 3]),
        broken(
            "billion-laughs", lambda d: dtd_laughs + strip_decl(d).replace(b"<sender>", b"<sender>&c;", 1)
        ),
        broken("xxe", lambda d: xxe + strip_decl(d).replace(b"<sender>", b"<sender>&x;", 1)),
        broken(
            "missing-identifier",
            lambda d: d.replace(b"<identifier>", b"<!--", 1).replace(b"</identifier>", b"-->", 1),
        ),
        broken("missing-sent", lambda d: d.replace(b"<sent>", b"<!--", 1).replace(b"</sent>", b"-->", 1)),
        broken("bad-status", lambda d: d.replace(b"<status>Actual<", b"<status>Real<", 1)),
        broken("cap10-namespace", lambda d: d.replace(NS12.encode(), b"http://www.incident.com/cap/1.0", 1)),
        broken("not-cap", lambda d: b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>'),
        broken("garbage", lambda d: bytes(range(256)) * 4),
        broken("empty", lambda d: b""),
        broken("bad-time", lambda d: d.replace(b"+08:00</sent>", b"+08:00 tomorrow</sent>", 1)),
        broken(
            "open-polygon",
            lambda d: d.replace(
                b"<geocode>",
                b"<polygon>24.9,102.4 24.95,102.45 24.9,102.5 24.85,102.45</polygon><geocode>",
                1,
            ),
        ),
        broken(
            "swapped-polygon",
            lambda d: d.replace(
                b"<geocode>", b"<polygon>102.4,24.9 102.45,24.95 102.5,24.9 102.4,24.9</polygon><geocode>", 1
            ),
        ),
        broken(
            "bad-references",
            lambda d: d.replace(b"<scope>", b"<references>only-one-part</references><scope>", 1),
        ),
        broken("deep-nesting", lambda d: d.replace(b"<info>", b"<info>" + b"<x>" * 60 + b"</x>" * 60, 1)),
    ]
    return recipe


def generate(out: Path, count: int = 240, seed: int = 2026) -> list[Entry]:
    """Write ``count`` documents and manifest.json into ``out`` (created; old *.xml files removed)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.xml"):
        old.unlink()
    recipe = _recipe(rng)
    while len(recipe) < count:
        recipe.append(recipe[rng.randrange(50)])  # top up with CMA documents
    entries = []
    for i, make in enumerate(recipe[:count] if count < len(recipe) else recipe):
        doc = make(i)
        doc.entry.file = f"{i:04d}-{doc.entry.kind}.xml"
        doc.entry.size = len(doc.data)
        (out / doc.entry.file).write_bytes(doc.data)
        entries.append(doc.entry)
    (out / "manifest.json").write_text(
        json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return entries


def load_manifest(out: Path) -> list[Entry]:
    raw = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return [Entry(**e) for e in raw]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="生成 CAP 基准测试语料")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--count", type=int, default=240)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    entries = generate(args.out, args.count, args.seed)
    sizes = sorted(e.size for e in entries)
    print(
        f"{len(entries)} documents in {args.out}: {sizes[0]} B … {sizes[-1]} B, "
        f"{sum(e.expect == 'valid' for e in entries)} valid, {sum(e.expect == 'lenient' for e in entries)} "
        f"lenient, {sum(e.expect == 'invalid' for e in entries)} invalid"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
