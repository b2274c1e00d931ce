"""Self-signed OPC UA application certificates (RSA 2048, SHA-256), as Basic256Sha256 needs.

A line normally uses the certificates its PLC vendor's tools issue; these serve the simulator, the
tests and the benchmark, and a controller that has none yet (its certificate must then be added to
the PLC's trusted list).
"""
import ipaddress
from pathlib import Path


def make_certificate(folder, name: str, application_uri: str, server: bool = False,
                     host: str = "localhost") -> tuple[Path, Path]:
    """Write `<name>.der` (certificate) and `<name>.pem` (private key) into `folder`; return their paths."""
    from asyncua.crypto.cert_gen import (dump_private_key_as_pem, generate_private_key,
                                         generate_self_signed_app_certificate)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    names = [x509.UniformResourceIdentifier(application_uri), x509.DNSName(host),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    use = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = generate_self_signed_app_certificate(key, application_uri, {}, names, extended=use, days=365)
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(dump_private_key_as_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path
