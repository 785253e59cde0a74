"""Ed25519 signatures over index.json (see ARCHITECTURE.md, "A signed catalog").

A maintainer makes a key pair once (`quantzoo keygen PATH`: the private key in PATH, mode 0600,
the public key in PATH.pub, both PEM), signs each build (`quantzoo build --sign-key PATH` writes
`index.json.sig` beside `index.json`: the 64-byte signature, base64, one line), and users verify
with the public key (`--trust-key PUB` or `$QUANTZOO_TRUST_KEY`) before the client reads
anything else from the catalog. The signature covers the exact bytes of index.json, which carry
every file's sha256 and size, so a verified index vouches for every download.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from .cache import atomic_write_bytes
from .errors import QuantzooError, UsageError

SIGNATURE_SUFFIX = ".sig"
ENV_TRUST_KEY = "QUANTZOO_TRUST_KEY"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - a declared dependency
        raise QuantzooError("signing needs the 'cryptography' package: pip install cryptography") from None
    return serialization, ed25519


def keygen(path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair: `path` (private, 0600) and `path`.pub; refuse to overwrite."""
    serialization, ed25519 = _crypto()
    priv_path = Path(path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise QuantzooError(f"{p} exists already; keygen never overwrites a key. "
                                "Choose another path or move the old key away first")
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv)
    atomic_write_bytes(pub_path, pub)
    return priv_path, pub_path


def _load(path: str | os.PathLike, private: bool):
    serialization, ed25519 = _crypto()
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the {'signing' if private else 'trusted'} key {p}: {e.strerror}; "
                         f"make one with `quantzoo keygen PATH`") from None
    want = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as e:
        raise UsageError(f"{p} is not a PEM {'private' if private else 'public'} key ({e}); "
                         f"`quantzoo keygen PATH` writes PATH (private) and PATH.pub (public)") from None
    if not isinstance(key, want):
        raise UsageError(f"{p} holds a {type(key).__name__}, expected an Ed25519 "
                         f"{'private' if private else 'public'} key")
    return key


def sign(data: bytes, key_path: str | os.PathLike) -> bytes:
    """The detached signature file's bytes for `data` (base64 of 64 bytes, newline)."""
    return base64.b64encode(_load(key_path, private=True).sign(data)) + b"\n"


def verify(data: bytes, signature: bytes | None, pub_path: str | os.PathLike, where: str) -> None:
    """Raise QuantzooError unless `signature` is a valid signature of `data` by the key in `pub_path`.

    `signature` None means the catalog has no signature file: an unsigned catalog is refused.
    """
    from cryptography.exceptions import InvalidSignature

    key = _load(pub_path, private=False)
    if signature is None:
        raise QuantzooError(f"the catalog at {where} is unsigned (no index.json{SIGNATURE_SUFFIX}) but a trusted key "
                            f"was given ({pub_path}); nothing was read from it. Ask its maintainer to build with "
                            "--sign-key, or drop --trust-key to use it unverified")
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw, data)
    except (InvalidSignature, binascii.Error, ValueError):
        raise QuantzooError(f"the catalog at {where} does not match its signature under the trusted key {pub_path}: "
                            "index.json or index.json.sig was altered, or it was signed with another key. "
                            "Nothing was read from it; do not use this catalog") from None


def trusted_key(path: str | os.PathLike | None) -> Path | None:
    """The public key to verify a catalog with: `path`, else ``$QUANTZOO_TRUST_KEY``, else None."""
    value = path if path not in (None, "") else os.environ.get(ENV_TRUST_KEY)
    return Path(value).expanduser() if value else None


def check_signing_key(path: str | os.PathLike) -> None:
    """Fail fast (a usage error) when `path` is not an Ed25519 private key, before any build work."""
    _load(path, private=True)


def cli_keygen(args) -> int:
    """``quantzoo keygen PATH``: a new key pair for signing catalogs."""
    priv, pub = keygen(args.path)
    print(f"private key: {priv} (mode 0600; keep it secret, pass it to quantzoo build --sign-key)")
    print(f"public key:  {pub} (give it to users: quantzoo pull --trust-key {pub.name} or ${ENV_TRUST_KEY})")
    return 0
