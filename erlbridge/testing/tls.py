"""Throw-away certificate authorities for TLS distribution tests (L4; needs ``cryptography``).

Use::

    ca = TestCA.create(tmp_path / "ca")                 # a self-signed root
    node = ca.issue("n1", hosts=["127.0.0.1"])          # cert + key valid for both roles
    old = ca.issue("old", hosts=["127.0.0.1"], expired=True)
    other = TestCA.create(tmp_path / "other").issue("n1")   # signed by the wrong CA
    write_ssl_dist_optfile(tmp_path / "n1.conf", ca_file=ca.ca_file, cert=node)

Every leaf certificate carries both ``serverAuth`` and ``clientAuth`` (a distribution node
is server and client) and the given hosts as subject alternative names (IP addresses both
as IP entries and as DNS names, which is what OTP's hostname check compares). Keys are
unencrypted P-256 PEM files written with mode 0600: test material only, never for
production.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erlbridge.term import Atom, ErlString, format_term

__all__ = ["CertFiles", "TestCA", "ssl_dist_options", "write_ssl_dist_optfile"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertFiles:
    """A PEM certificate, its PEM private key, and the CA file that verifies it."""

    cert: Path
    key: Path
    ca_file: Path


def _crypto() -> Any:
    try:
        from cryptography import x509  # noqa: PLC0415 -- optional test dependency
    except ImportError as exc:  # pragma: no cover - dev extra
        raise RuntimeError("erlbridge.testing.tls needs 'cryptography' (dev extra)") from exc
    return x509


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class TestCA:
    """A self-signed root CA kept in ``directory`` (``ca.pem`` / ``ca.key``)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, key: Any, cert: Any) -> None:
        self.directory = directory
        self._key = key
        self._cert = cert
        self.ca_file = directory / "ca.pem"

    def __repr__(self) -> str:
        return f"<TestCA {self.directory}>"

    @classmethod
    def create(cls, directory: Path, *, common_name: str = "erlbridge test CA") -> TestCA:
        """Make a new root (valid from yesterday for ten years) in ``directory``."""
        x509 = _crypto()
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415

        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        ca.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(
            directory / "ca.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        return ca

    def issue(
        self,
        name: str,
        *,
        hosts: Sequence[str] = ("127.0.0.1", "localhost"),
        expired: bool = False,
        valid_days: int = 30,
    ) -> CertFiles:
        """A leaf certificate ``<name>.pem`` + key ``<name>.key`` for ``hosts``.

        ``expired=True`` makes one whose validity ended yesterday (it started 30 days ago).
        """
        x509 = _crypto()
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        if expired:
            start, end = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
        else:
            start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(valid_days)
        alt_names: list[Any] = []
        for host in hosts:
            with contextlib.suppress(ValueError):
                alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
            # OTP's inet_tls_dist checks the host part of the node name as a DNS id (it
            # puts it first as server_name_indication), even for an IP address; Python
            # matches an IP only against IP entries. So an IP gets both entries.
            alt_names.append(x509.DNSName(host))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path = self.directory / f"{name}.pem"
        key_path = self.directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        return CertFiles(cert_path, key_path, self.ca_file)


def ssl_dist_options(
    *,
    ca_file: Path | str,
    cert: CertFiles,
    verify: bool = True,
    check_hostname: bool = False,
) -> list[tuple[Atom, list[tuple[Atom, Any]]]]:
    """The ``[{server, Opts}, {client, Opts}]`` term of an ``-ssl_dist_optfile``.

    Both sides verify their peer (``verify_peer``; the server also sets
    ``fail_if_no_peer_cert``). ``check_hostname=False`` turns off the client's SNI and
    hence OTP's hostname check (``{server_name_indication, disable}``); the chain is still
    verified.
    """
    verify_atom = Atom("verify_peer" if verify else "verify_none")
    common: list[tuple[Atom, Any]] = [
        (Atom("cacertfile"), ErlString(str(ca_file))),
        (Atom("certfile"), ErlString(str(cert.cert))),
        (Atom("keyfile"), ErlString(str(cert.key))),
        (Atom("verify"), verify_atom),
        (Atom("secure_renegotiate"), True),
    ]
    server = [*common, (Atom("fail_if_no_peer_cert"), verify)]
    client = list(common)
    if not check_hostname:
        client.append((Atom("server_name_indication"), Atom("disable")))
    return [(Atom("server"), server), (Atom("client"), client)]


def write_ssl_dist_optfile(
    path: Path,
    *,
    ca_file: Path | str,
    cert: CertFiles,
    verify: bool = True,
    check_hostname: bool = False,
) -> Path:
    """Write :func:`ssl_dist_options` as Erlang text for ``-ssl_dist_optfile``."""
    term = ssl_dist_options(
        ca_file=ca_file, cert=cert, verify=verify, check_hostname=check_hostname
    )
    path.write_text(format_term(term) + ".\n")
    return path
