"""Certificate authorities and certificates for the TLS tests, written as
PEM files the way Kafka's PEM stores take them: a key store is one file of
the private key (unencrypted PKCS#8) and the certificate chain, a trust
store a file of CA certificates."""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gregor tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Authority:
    """A self-signed CA that signs server and client certificates."""

    def __init__(self, name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self):
        return _pem(self.cert)

    def write_trust_store(self, path):
        Path(path).write_text(self.pem())
        return Path(path)

    def issue(self, common_name, hosts=("localhost", "127.0.0.1"), expired=False):
        """A key store (key + chain PEM text) for a certificate naming
        `hosts`, good as a server's and a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        names = [x509.IPAddress(ipaddress.ip_address(h)) if h.replace(".", "").isdigit() else x509.DNSName(h)
                 for h in hosts]
        cert = (x509.CertificateBuilder()
                .subject_name(_name(common_name)).issuer_name(self.name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return Leaf(key_pem, _pem(cert) + self.pem())


class Leaf:
    """A certificate chain and its private key."""

    def __init__(self, key_pem, chain_pem):
        self.key_pem = key_pem
        self.chain_pem = chain_pem

    def write(self, directory, stem):
        """Writes `stem.pem` (key and chain, a PEM key store), `stem.key`
        and `stem.crt` (for librdkafka and kcat); returns their paths."""
        directory = Path(directory)
        store, key, crt = directory / f"{stem}.pem", directory / f"{stem}.key", directory / f"{stem}.crt"
        # Replaced, not rewritten in place: how a renewal lands.
        for path, text in [(key, self.key_pem), (crt, self.chain_pem), (store, self.key_pem + self.chain_pem)]:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return store, key, crt
