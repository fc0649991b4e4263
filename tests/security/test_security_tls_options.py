"""TLSOptions without a network: contexts, repr, and reading an Erlang ssl_dist_optfile."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from erlbridge.asyncio.tls import TLSOptions, tls_error
from erlbridge.exceptions import HandshakeError, ProtocolError, TLSError
from erlbridge.testing.tls import TestCA, write_ssl_dist_optfile


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, Path]:
    root = tmp_path_factory.mktemp("pki")
    return TestCA.create(root / "ca"), root


def test_security_tls_contexts(pki: tuple[TestCA, Path]) -> None:
    ca, _ = pki
    leaf = ca.issue("node")
    opts = TLSOptions(ca_file=ca.ca_file, cert_file=leaf.cert, key_file=leaf.key,
                      key_password="hunter2", min_version=ssl.TLSVersion.TLSv1_3)
    client = opts.client_context()
    assert client.verify_mode is ssl.CERT_REQUIRED and client.check_hostname
    assert client.minimum_version is ssl.TLSVersion.TLSv1_3
    server = opts.server_context()
    assert server.verify_mode is ssl.CERT_REQUIRED  # clients must show a certificate
    assert "hunter2" not in repr(opts)
    relaxed = TLSOptions(ca_file=ca.ca_file, check_hostname=False).client_context()
    assert relaxed.verify_mode is ssl.CERT_REQUIRED and not relaxed.check_hostname
    with pytest.raises(ValueError, match="cert_file"):
        TLSOptions(ca_file=ca.ca_file).server_context()


def test_security_tls_from_ssl_dist_optfile(pki: tuple[TestCA, Path]) -> None:
    ca, root = pki
    leaf = ca.issue("optnode")
    conf = write_ssl_dist_optfile(root / "dist.conf", ca_file=ca.ca_file, cert=leaf)
    opts = TLSOptions.from_ssl_dist_optfile(conf)
    assert (opts.ca_file, opts.cert_file, opts.key_file) == (
        str(ca.ca_file), str(leaf.cert), str(leaf.key))
    assert opts.verify_peer and not opts.check_hostname  # server_name_indication disable
    opts.client_context()
    server = TLSOptions.from_ssl_dist_optfile(conf, side="server", handshake_timeout=3.0)
    assert server.check_hostname and server.handshake_timeout == 3.0
    server.server_context()
    text = root / "custom.conf"
    text.write_text('[{client, [{cacertfile, "/x/ca.pem"}, {verify, verify_none}, '
                    "{versions, ['tlsv1.3', 'tlsv1.2']}, {depth, 3}]}].\n")
    custom = TLSOptions.from_ssl_dist_optfile(text)
    assert custom.ca_file == "/x/ca.pem" and not custom.verify_peer
    assert custom.min_version is ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValueError, match="server"):
        TLSOptions.from_ssl_dist_optfile(text, side="server")


def test_security_tls_error_is_typed() -> None:
    err = tls_error(ssl.SSLCertVerificationError(1, "x"), "n@h")
    assert isinstance(err, TLSError) and isinstance(err, HandshakeError)
    assert isinstance(err, ProtocolError)
    assert tls_error(ConnectionResetError(), "n@h").reason == "closed"
    assert tls_error(ConnectionAbortedError("slow"), "n@h").reason == "timeout"
