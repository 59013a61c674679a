"""The service's signing keys: a private JWK set on disk; the newest key signs, every key verifies.

"Newest" is positional: the LAST key of the file's ``keys`` array, never a timestamp, so that an
operator can tell which key signs by reading the file. Rotation is by adding a key (``rotate``), which
signs from then on while tokens signed by the older keys keep verifying; an old key is removed by
hand once the longest token lifetime has passed. A key before the last may be public only (its private
part destroyed): it still verifies. Running processes read the file at start-up only.

Only asymmetric signatures: ES256 (P-256) and, when such a key is in the file, Ed25519 (``alg``
``Ed25519`` per RFC 9864, or the older ``EdDSA``). Anything else — RSA, other curves, ``oct``
secrets (HS*) — is refused at load, so ``none`` and HS* can never be configured. A key without
``kid`` gets its RFC 7638 thumbprint, which is also how generated keys are named.

Permissions: the file holds private keys. ``load`` refuses a file that group or others may WRITE
(whoever can add a key can mint admin tokens) and logs a warning for one they may READ (mounted
secrets are often 0644 and root-owned; refusing those would break such deployments). New files are
created 0600 by ``os.open(O_CREAT | O_EXCL)``, never written and then chmod-ed; the data dir is
created 0700 when missing (an existing one is left as it is).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "signing-keys.json"
DEFAULT_ALGORITHM = "ES256"
#: The JWS algorithms a signing key may have, with the key type and curve each one needs.
SUPPORTED_ALGORITHMS: Mapping[str, tuple[str, str]] = {
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}
#: RFC 9864 deprecates the polymorphic "EdDSA" for "Ed25519"; a key file may still say "EdDSA".
_DEFAULT_ALG_FOR_CURVE = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "Ed25519"}
_KEY_MEMBERS = ("kty", "crv", "x", "y", "d")

SigningKey = ECKey | OKPKey


class SigningKeyError(Exception):
    """A key file or key the service refuses to use. Messages name the file, never key material."""


@dataclass(frozen=True, slots=True)
class ManagedKey:
    """One key of the set: its id, its pinned algorithm, its public half and (if kept) its private half."""

    kid: str
    alg: str
    public: SigningKey
    private: SigningKey | None = field(default=None, repr=False)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.public.as_dict(private=False))


class SigningKeys:
    """An in-memory, append-only set of keys. Lookups are dict reads; ``add_key`` swaps whole objects,
    so a concurrent reader sees either the old set or the new one."""

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        managed = tuple(_manage(key) for key in keys)
        if not managed:
            raise SigningKeyError("the signing key set is empty")
        if managed[-1].private is None:
            raise SigningKeyError("the newest (last) key must be private: it signs")
        self._keys: tuple[ManagedKey, ...] = ()
        self._by_kid: dict[str, ManagedKey] = {}
        for key in managed:
            self._append(key)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, alg: str = DEFAULT_ALGORITHM) -> SigningKeys:
        """A fresh one-key set, in memory only (tests, or before ``save``)."""
        return cls([generate_key(alg)])

    @classmethod
    def from_jwks(cls, data: object, *, source: str = "the key set") -> SigningKeys:
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
            raise SigningKeyError(f'{source} is not a JWK set: expected {{"keys": [...]}} with at least one key')
        imported: list[SigningKey] = []
        for index, member in enumerate(data["keys"]):
            try:
                imported.append(_import(member))
            except SigningKeyError as error:
                raise SigningKeyError(f"{source}, key #{index}: {error}") from None
        try:
            return cls(imported)
        except SigningKeyError as error:
            raise SigningKeyError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKeys:
        """Read a private JWK set file, checking its permissions first (see the module docstring)."""
        try:
            return cls._read(Path(path))
        except FileNotFoundError:
            raise SigningKeyError(f"signing key file {os.fspath(path)} does not exist") from None
        except OSError as error:
            raise SigningKeyError(f"signing key file {os.fspath(path)} cannot be read: {error.strerror}") from None

    @classmethod
    def load_or_generate(cls, data_dir: str | os.PathLike[str]) -> SigningKeys:
        """``<data_dir>/signing-keys.json``, generated (one ES256 key) when missing.

        Several processes may share a data dir and start together: the file is published with
        ``os.link`` (which never replaces), so the loser of a race loads the winner's complete file.
        """
        directory = Path(data_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / KEY_FILE_NAME
        try:
            return cls._read(path)
        except FileNotFoundError:
            pass
        keys = cls.generate()
        try:
            _publish_new(path, keys._private_jwks())
        except FileExistsError:
            return cls.load(path)
        logger.info("auth.signing_keys.generated path=%s kid=%s", path, keys.signing_kid)
        return keys

    @classmethod
    def rotate(cls, path: str | os.PathLike[str], alg: str = DEFAULT_ALGORITHM) -> SigningKeys:
        """Append a freshly generated key to the file (atomically, 0600); it signs from now on."""
        keys = cls.load(path)
        keys.add_key(alg=alg)
        keys.save(path)
        return keys

    # -- changes --------------------------------------------------------------------------------

    def add_key(self, key: SigningKey | None = None, *, alg: str = DEFAULT_ALGORITHM) -> str:
        """Append ``key`` (or a newly generated one of ``alg``); it becomes the signing key. Returns its kid."""
        managed = _manage(key if key is not None else generate_key(alg))
        if managed.private is None:
            raise SigningKeyError("the newest key must be private: it signs")
        self._append(managed)
        return managed.kid

    def save(self, path: str | os.PathLike[str]) -> None:
        """Rewrite the file atomically: a new 0600 file beside it, then ``os.replace``."""
        target = Path(path)
        temporary = _temporary_beside(target)
        try:
            _write_exclusive(temporary, self._private_jwks())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(target.parent)

    # -- reads ----------------------------------------------------------------------------------

    @property
    def signing_key(self) -> ManagedKey:
        return self._keys[-1]

    @property
    def signing_kid(self) -> str:
        return self._keys[-1].kid

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(key.kid for key in self._keys)

    def verification_key(self, kid: str) -> ManagedKey | None:
        return self._by_kid.get(kid)

    async def lookup(self, kid: str) -> ManagedKey | None:
        """A file's set is complete: an unknown kid stays unknown (``KeyRing`` asks the registry)."""
        return self._by_kid.get(kid)

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """What ``/.well-known/jwks.json`` publishes: public members, ``kid``, ``alg`` and ``use`` only."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeys(kids={list(self.kids)!r}, signing={self.signing_kid!r})"

    # -- internals ------------------------------------------------------------------------------

    def _append(self, key: ManagedKey) -> None:
        if key.kid in self._by_kid:
            raise SigningKeyError(f"two keys have the kid {key.kid!r}")
        self._by_kid = {**self._by_kid, key.kid: key}
        self._keys = (*self._keys, key)

    def _private_jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "keys": [dict((key.private or key.public).as_dict(private=key.private is not None)) for key in self._keys]
        }

    @classmethod
    def _read(cls, path: Path) -> SigningKeys:
        fd = os.open(path, os.O_RDONLY)  # symlinks allowed: mounted secrets are symlinks
        with os.fdopen(fd, "rb") as file:
            _check_permissions(path, os.fstat(file.fileno()))
            raw = file.read()
        try:
            data = json.loads(raw)
        except ValueError:
            raise SigningKeyError(f"signing key file {path} is not valid JSON") from None
        return cls.from_jwks(data, source=f"signing key file {path}")


def generate_key(alg: str = DEFAULT_ALGORITHM) -> SigningKey:
    """A new private key for ``alg``, named by its RFC 7638 thumbprint."""
    if alg not in SUPPORTED_ALGORITHMS:
        raise SigningKeyError(f"unsupported signing algorithm {alg!r}; use one of {sorted(SUPPORTED_ALGORITHMS)}")
    kty, crv = SUPPORTED_ALGORITHMS[alg]
    key: SigningKey = ECKey.generate_key(crv) if kty == "EC" else OKPKey.generate_key("Ed25519")
    return _manage(key, alg=alg).private or key


def public_key(kid: str, alg: str, members: Mapping[str, Any]) -> ManagedKey:
    """Another replica's public key (from the registry), checked as a key file's key is: EC P-256 or
    OKP Ed25519, its ``alg`` pinned; one that carries a private member is refused, never used."""
    if "d" in members:
        raise SigningKeyError("a registered key must be public: it carries a private member")
    jwk = {name: members[name] for name in _KEY_MEMBERS if name in members} | {"kid": kid, "alg": alg}
    return _manage(_import(jwk))


def _import(member: object) -> SigningKey:
    if not isinstance(member, dict):
        raise SigningKeyError("not a JSON object")
    kty = member.get("kty")
    try:
        if kty == "EC":
            return ECKey.import_key(member)
        if kty == "OKP":
            return OKPKey.import_key(member)
    except (JoseError, ValueError, TypeError) as error:
        raise SigningKeyError(f"not a valid {kty} key ({type(error).__name__})") from None
    raise SigningKeyError(f"key type {kty!r} is not allowed: only EC P-256 (ES256) and OKP Ed25519 sign tokens")


def _manage(key: SigningKey, alg: str | None = None) -> ManagedKey:
    """Pin the key's algorithm, name it, and keep only the members a JWK needs (no key_ops, no x5c)."""
    if not isinstance(key, (ECKey, OKPKey)):
        raise SigningKeyError(f"{type(key).__name__} keys are not allowed: only EC P-256 and OKP Ed25519")
    kty, crv = key.key_type, key.curve_name
    alg = alg or key.alg or _DEFAULT_ALG_FOR_CURVE.get((kty, crv))
    if alg is None or SUPPORTED_ALGORITHMS.get(alg) != (kty, crv):
        raise SigningKeyError(f"a {kty} {crv} key with alg {alg!r} is not allowed: only ES256 (P-256) or Ed25519")
    use = key.get("use")
    if use not in (None, "sig"):
        raise SigningKeyError(f"a key with use {use!r} cannot sign tokens")
    kid = key.kid or key.thumbprint()
    if not isinstance(kid, str) or not kid:
        raise SigningKeyError("a key's kid must be a non-empty string")
    params = {"kid": kid, "alg": alg, "use": "sig"}
    members = key.as_dict(private=key.is_private)
    private_jwk = {name: members[name] for name in _KEY_MEMBERS if name in members} | params
    public_jwk = {name: value for name, value in private_jwk.items() if name != "d"}
    cls = ECKey if kty == "EC" else OKPKey
    return ManagedKey(
        kid=kid,
        alg=alg,
        public=cls.import_key(public_jwk),
        private=cls.import_key(private_jwk) if key.is_private else None,
    )


def _check_permissions(path: Path, status: os.stat_result) -> None:
    if os.name != "posix":
        return
    if not stat.S_ISREG(status.st_mode):
        raise SigningKeyError(f"signing key file {path} is not a regular file")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SigningKeyError(
            f"signing key file {path} is writable by group or others (mode {stat.S_IMODE(status.st_mode):04o}); "
            "anyone who can add a key can mint tokens: chmod 600 it"
        )
    if status.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning(
            "auth.signing_keys.readable_by_others path=%s mode=%04o: chmod 600 it",
            path,
            stat.S_IMODE(status.st_mode),
        )


def _serialise(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def _write_exclusive(path: Path, data: Mapping[str, Any]) -> None:
    """Create ``path`` 0600 (refusing an existing file or symlink), write, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(_serialise(data))
        file.flush()
        os.fsync(file.fileno())


def _publish_new(path: Path, data: Mapping[str, Any]) -> None:
    """Make ``path`` appear complete or not at all; FileExistsError when another process was first."""
    temporary = _temporary_beside(path)
    try:
        _write_exclusive(temporary, data)
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: exclusive create, with a short window
            _write_exclusive(path, data)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
