"""The development cluster's certificates: one CA, the API server's serving certificate and the
client certificate it presents to the kubelet (for logs and exec). Written as PEM files."""

import datetime
import ipaddress
from pathlib import Path


def _name(common_name: str, organization: str | None = None):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _write(path: Path, certificate, key) -> None:
    from cryptography.hazmat.primitives import serialization

    path.with_suffix(".crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


class ClusterPki:
    """`ca.crt`, `apiserver.{crt,key}`, `kubelet-client.{crt,key}` and the ServiceAccount
    signing pair `sa.{key,pub}` in `directory`."""

    def __init__(self, directory: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca = self._sign(_name("ml-assets-dev-ca"), self._ca_key.public_key(), ca=True)
        _write(directory / "ca", self._ca, self._ca_key)

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def _sign(self, subject, public_key, *, ca=False, server_names=(), client=False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID

        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if ca else self._ca.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if server_names:
            alternatives = []
            for name in server_names:
                try:
                    alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alternatives.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), False)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(self._ca_key, hashes.SHA256())

    def issue(self, name: str, common_name: str, *, organization=None, server_names=(),
              client=False) -> tuple[Path, Path]:  # fmt: skip
        """A key pair signed by the CA; returns (certificate, key) paths."""
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._sign(
            _name(common_name, organization), key.public_key(),
            server_names=server_names, client=client,
        )  # fmt: skip
        _write(self.directory / name, certificate, key)
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"

    def service_account_keys(self) -> tuple[Path, Path]:
        """(private, public) keys that sign and check ServiceAccount tokens."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private, public = self.directory / "sa.key", self.directory / "sa.pub"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return private, public
