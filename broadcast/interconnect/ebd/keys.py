"""SM2 key files for the interconnect: generate a software key pair, read key files named in the config.

    python -m broadcast.interconnect.ebd.keys generate --out var/keys [--name county] [--force]
    python -m broadcast.interconnect.ebd.keys public var/keys/county-sm2.pem

`generate` writes `<name>-sm2.pem` (PKCS#8 private key, mode 0600), `<name>-sm2.pub.pem` and
`<name>-sm2.pub.hex` (x ‖ y, the form vendors' consoles ask for) and prints the config lines to paste.
Keys from a crypto device (Tass etc.) are not handled here.

Must never print, log or send private key material anywhere but the file it writes, and never overwrite an
existing private key without --force.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from broadcast.interconnect.ebd.signing import (
    PrivateKey,
    PublicKey,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_hex,
    public_key_to_pem,
)


class KeyFault(StrEnum):
    MISSING = "missing"
    UNREADABLE = "unreadable"
    INVALID = "invalid"
    EXISTS = "exists"


class KeyFileError(ValueError):
    """A key file that cannot be used; names the file and says what to do."""

    def __init__(self, fault: KeyFault, path: Path, message: str) -> None:
        self.fault = fault
        self.path = path
        super().__init__(message)


@dataclass(frozen=True)
class KeyPairFiles:
    private_pem: Path
    public_pem: Path
    public_hex: Path


def key_paths(out_dir: Path, name: str) -> KeyPairFiles:
    stem = f"{name}-sm2"
    return KeyPairFiles(out_dir / f"{stem}.pem", out_dir / f"{stem}.pub.pem", out_dir / f"{stem}.pub.hex")


def write_key_pair(out_dir: Path, name: str = "county", *, force: bool = False) -> KeyPairFiles:
    """Generate an SM2 key pair into `out_dir`; the private key file is created with mode 0600."""
    paths = key_paths(out_dir, name)
    if paths.private_pem.exists() and not force:
        raise KeyFileError(
            KeyFault.EXISTS,
            paths.private_pem,
            f"私钥文件 {paths.private_pem} 已存在，未覆盖；确需更换密钥请加 --force（上级平台需同步更新公钥）",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    fd = os.open(paths.private_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(private_key_to_pem(key))
    os.chmod(paths.private_pem, 0o600)
    paths.public_pem.write_text(public_key_to_pem(key.public_key()), encoding="ascii")
    paths.public_hex.write_text(public_key_to_hex(key.public_key()) + "\n", encoding="ascii")
    return paths


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(
            KeyFault.MISSING,
            path,
            f"{what}文件 {path} 不存在；请检查 [interconnect] 配置中的路径，"
            "或用 python -m broadcast.interconnect.ebd.keys generate 生成",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(
            KeyFault.UNREADABLE, path, f"无法读取{what}文件 {path}（{exc}），请检查文件权限和格式"
        ) from None


def read_private_key(path: Path) -> PrivateKey:
    """A PEM (PKCS#8 / SEC1, unencrypted) or 64-hex-digit SM2 private key file."""
    try:
        return load_private_key(_read(path, "SM2 私钥"))
    except KeyFileError:
        raise
    except Exception as exc:  # the library raises several types for bad key text
        raise KeyFileError(
            KeyFault.INVALID,
            path,
            f"SM2 私钥文件 {path} 内容无效（{type(exc).__name__}），应为 PEM 或 64 位十六进制",
        ) from None


def read_public_key(value: str, base_dir: Path) -> PublicKey:
    """A public key given inline (PEM text or 128/130 hex digits) or as a file path (relative to base_dir)."""
    text = value.strip()
    inline = text.startswith("-----BEGIN") or (
        len(text) in (128, 130) and all(c in "0123456789abcdefABCDEF" for c in text)
    )
    path = Path(text) if Path(text).is_absolute() else base_dir / text
    if not inline:
        text = _read(path, "SM2 公钥")
    try:
        return load_public_key(text)
    except Exception as exc:
        where = "配置中的公钥" if inline else f"SM2 公钥文件 {path}"
        raise KeyFileError(
            KeyFault.INVALID, path, f"{where}内容无效（{type(exc).__name__}），应为 PEM 或 128 位十六进制 x‖y"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m broadcast.interconnect.ebd.keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate an SM2 key pair")
    gen.add_argument("--out", type=Path, default=Path("var/keys"), help="directory (default var/keys)")
    gen.add_argument("--name", default="county", help="file name stem (default county)")
    gen.add_argument("--force", action="store_true", help="replace an existing private key")
    pub = sub.add_parser("public", help="print the public key (hex x‖y) of a private key file")
    pub.add_argument("private_key", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            paths = write_key_pair(args.out, args.name, force=args.force)
            print(f"wrote {paths.private_pem} (private, 0600), {paths.public_pem}, {paths.public_hex}")
            print("\n# in your [interconnect] section:")
            print(f'private_key = "{paths.private_pem}"')
            print("# give the upper platform this public key (hex x‖y) with your certificate serial:")
            print(paths.public_hex.read_text(encoding="ascii").strip())
        else:
            print(public_key_to_hex(read_private_key(args.private_key).public_key()))
    except KeyFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
