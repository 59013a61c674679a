"""The signing key file: created private, loaded stably, rotated by appending, published without secrets."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from adapters.auth.keys import KEY_FILE_NAME, SigningKeyError, SigningKeys, generate_key

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def members(value: Any) -> set[str]:
    """Every object member name anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {name for item in value.values() for name in members(item)}
    if isinstance(value, list):
        return {name for item in value for name in members(item)}
    return set()


def write(path: Path, data: Any, file_mode: int = 0o600) -> Path:
    path.write_text(json.dumps(data))
    path.chmod(file_mode)
    return path


def test_the_generated_file_is_0600_in_a_0700_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "eyewear"
    keys = SigningKeys.load_or_generate(data_dir)
    path = data_dir / KEY_FILE_NAME
    assert mode(data_dir) == 0o700
    assert mode(path) == 0o600
    assert len(keys) == 1 and keys.signing_key.alg == "ES256"
    stored = json.loads(path.read_text())
    assert [key["kid"] for key in stored["keys"]] == [keys.signing_kid]
    assert stored["keys"][0]["crv"] == "P-256" and "d" in stored["keys"][0]
    assert not [p for p in data_dir.iterdir() if p.name != KEY_FILE_NAME]  # no temporary file left behind


def test_the_kid_is_stable_across_loads(tmp_path: Path) -> None:
    first = SigningKeys.load_or_generate(tmp_path)
    second = SigningKeys.load_or_generate(tmp_path)
    third = SigningKeys.load(tmp_path / KEY_FILE_NAME)
    assert first.kids == second.kids == third.kids
    assert first.signing_kid == first.signing_key.public.thumbprint()  # RFC 7638


def test_an_existing_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    SigningKeys.load_or_generate(tmp_path)
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / KEY_FILE_NAME) == 0o600


def test_public_jwks_has_no_private_member(tmp_path: Path) -> None:
    SigningKeys.load_or_generate(tmp_path)
    keys = SigningKeys.rotate(tmp_path / KEY_FILE_NAME, alg="Ed25519")
    jwks = keys.public_jwks()
    assert "d" not in members(jwks)
    published = json.dumps(jwks)
    for stored in json.loads((tmp_path / KEY_FILE_NAME).read_text())["keys"]:
        assert stored["d"] not in published
    for key, kid in zip(jwks["keys"], keys.kids, strict=True):
        assert key["kid"] == kid and key["use"] == "sig"
        assert set(key) <= {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert [key["alg"] for key in jwks["keys"]] == ["ES256", "Ed25519"]
    for verification in (keys.verification_key(kid) for kid in keys.kids):
        assert verification is not None and not verification.public.is_private


def test_repr_names_kids_only(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_generate(tmp_path)
    private = json.loads((tmp_path / KEY_FILE_NAME).read_text())["keys"][0]["d"]
    assert private not in repr(keys) and private not in repr(keys.signing_key)


def test_rotate_appends_and_the_newest_signs(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    old = SigningKeys.load_or_generate(tmp_path)
    rotated = SigningKeys.rotate(path)
    reloaded = SigningKeys.load(path)
    assert reloaded.kids == rotated.kids and len(reloaded) == 2
    assert reloaded.kids[0] == old.signing_kid
    assert reloaded.signing_kid == reloaded.kids[-1] != old.signing_kid
    assert [key["kid"] for key in json.loads(path.read_text())["keys"]][-1] == reloaded.signing_kid
    assert mode(path) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != KEY_FILE_NAME]


def test_add_key_in_memory_changes_the_signing_key() -> None:
    keys = SigningKeys.generate()
    first = keys.signing_kid
    kid = keys.add_key()
    assert keys.signing_kid == kid != first
    assert keys.verification_key(first) is not None


def test_a_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    SigningKeys.load_or_generate(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    for unsafe in (0o620, 0o602, 0o666):
        path.chmod(unsafe)
        with pytest.raises(SigningKeyError, match="writable by group or others"):
            SigningKeys.load(path)


def test_a_file_readable_by_others_loads_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = SigningKeys.load_or_generate(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="adapters.auth.keys"):
        assert SigningKeys.load(path).kids == first.kids
    assert any("readable_by_others" in record.getMessage() for record in caplog.records)


def test_a_symlinked_file_loads(tmp_path: Path) -> None:
    """Mounted secrets (Kubernetes, Docker) are symlinks to the real file."""
    first = SigningKeys.load_or_generate(tmp_path / "real")
    link = tmp_path / "mounted.json"
    link.symlink_to(tmp_path / "real" / KEY_FILE_NAME)
    assert SigningKeys.load(link).kids == first.kids


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="does not exist"):
        SigningKeys.load(tmp_path / "nope.json")


def test_a_key_without_kid_is_named_by_its_thumbprint(tmp_path: Path) -> None:
    key = ECKey.generate_key("P-256")
    keys = SigningKeys.load(write(tmp_path / "k.json", {"keys": [key.as_dict(private=True)]}))
    assert keys.signing_kid == key.thumbprint()
    assert keys.signing_key.alg == "ES256"


def test_an_ed25519_key_may_sign(tmp_path: Path) -> None:
    key = OKPKey.generate_key("Ed25519").as_dict(private=True) | {"kid": "ed-1", "alg": "EdDSA"}
    keys = SigningKeys.load(write(tmp_path / "k.json", {"keys": [key]}))
    assert (keys.signing_kid, keys.signing_key.alg) == ("ed-1", "EdDSA")


def test_older_keys_may_be_public_only_but_not_the_newest(tmp_path: Path) -> None:
    retired = generate_key().as_dict(private=False)
    current = generate_key().as_dict(private=True)
    keys = SigningKeys.load(write(tmp_path / "ok.json", {"keys": [retired, current]}))
    assert keys.kids == (retired["kid"], current["kid"])
    with pytest.raises(SigningKeyError, match="newest"):
        SigningKeys.load(write(tmp_path / "bad.json", {"keys": [current, retired]}))


def ec(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in (generate_key().as_dict(private=True) | changes).items() if v is not None}


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"keys": []}, "not a JWK set"),
        ([], "not a JWK set"),
        ({"keys": "x"}, "not a JWK set"),
        ({"keys": [42]}, "not a JSON object"),
        ({"keys": [OctKey.generate_key(256).as_dict(private=True)]}, "'oct' is not allowed"),
        ({"keys": [RSAKey.generate_key(2048).as_dict(private=True)]}, "'RSA' is not allowed"),
        ({"keys": [ECKey.generate_key("P-384").as_dict(private=True)]}, "P-384"),
        ({"keys": [ec(alg="HS256")]}, "HS256"),
        ({"keys": [ec(alg="none")]}, "none"),
        ({"keys": [ec(alg="ES384")]}, "ES384"),
        ({"keys": [ec(use="enc")]}, "use 'enc'"),
        ({"keys": [ec(x="AAAA")]}, "not a valid EC key"),
        ({"keys": [ec(kid="same"), ec(kid="same")]}, "two keys have the kid 'same'"),
    ],
)
def test_refused_key_sets(tmp_path: Path, data: Any, complaint: str) -> None:
    path = write(tmp_path / "k.json", data)
    with pytest.raises(SigningKeyError, match=complaint) as caught:
        SigningKeys.load(path)
    assert str(path) in str(caught.value)
    for key in data.get("keys", []) if isinstance(data, dict) else []:
        if isinstance(key, dict) and "d" in key:
            assert str(key["d"]) not in str(caught.value)


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not valid JSON"):
        SigningKeys.load(path)


def test_generating_refuses_unsupported_algorithms() -> None:
    for alg in ("HS256", "none", "RS256", "ES384"):
        with pytest.raises(SigningKeyError):
            SigningKeys.generate(alg)


def test_load_or_generate_never_replaces_an_existing_file(tmp_path: Path) -> None:
    existing = SigningKeys.generate()
    existing.save(tmp_path / KEY_FILE_NAME)
    assert SigningKeys.load_or_generate(tmp_path).kids == existing.kids
