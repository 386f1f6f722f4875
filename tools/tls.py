"""The line's own certificate authority and the broker's server certificate (X.509, ECDSA P-256).

Nodes and the commission check the broker against the CA certificate they were given at
provisioning; nobody depends on a public CA (the line may be offline). The CA key signs only
server certificates; whoever holds it can make a broker the nodes trust, so it stays with the
commission's provisioning folder (docs/field-guide.md, "TLS"), never on the broker's disk in
its folder and never on a board.

    ca = CertificateAuthority.load_or_create(out / "ca")          # ca.key (0600), ca.crt
    issue_server(ca, broker_dir, ["10.3.0.1", "localhost"])        # server.key (0600), server.crt
    server_needs_renewal(broker_dir, names)                        # True: missing, names changed, < 30 days
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lwtools.broker_access import write_private

CA_DAYS = 3650
SERVER_DAYS = 825           # the longest life clients accept for a server certificate
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cert_path: Path

    @classmethod
    def load_or_create(cls, folder: Path) -> "CertificateAuthority":
        folder = Path(folder)
        key_path, cert_path = folder / "ca.key", folder / "ca.crt"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()), cert_path)
        if key_path.exists() or cert_path.exists():
            raise ValueError(f"{folder}: ca.key and ca.crt go together; one is missing")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LineWatch line CA")])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .sign(key, hashes.SHA256()))
        write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode())
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        cert_path.chmod(0o644)
        return cls(key, cert, cert_path)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            pass
        alt.append(x509.DNSName(name))   # also for an address: mbedtls on a board matches names only
    return alt


def issue_server(ca: CertificateAuthority, folder: Path, names: list[str]) -> tuple[Path, Path]:
    """A new server key and certificate for the broker, valid for `names` (host names and
    addresses the nodes and the commission connect to). -> (cert path, key path)."""
    folder = Path(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    key_path, cert_path = folder / "server.key", folder / "server.crt"
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode())
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
    write_private(folder / "ca.crt", ca.pem)
    return cert_path, key_path


def server_needs_renewal(folder: Path, names: list[str], ca: CertificateAuthority) -> str | None:
    """Why the broker's certificate must be issued (again), or None when it still serves."""
    path = Path(folder) / "server.crt"
    if not path.exists() or not (Path(folder) / "server.key").exists():
        return "the broker had none yet"
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return "issued by another CA"
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        have = []
    missing = [n for n in names if n not in have]
    if missing:
        return f"does not name {', '.join(missing)}"
    left = cert.not_valid_after_utc - _now()
    if left < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return f"expires in {max(left.days, 0)} days"
    return None


def private_pki(folder: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> dict[str, Path]:
    """A CA and a broker certificate in `folder` for a private broker (tests, benchmarks).
    -> {"ca.crt", "server.crt", "server.key": path}."""
    folder = Path(folder)
    ca = CertificateAuthority.load_or_create(folder / "ca")
    issue_server(ca, folder, list(names))
    return {name: folder / name for name in ("ca.crt", "server.crt", "server.key")}

