"""Certificate authorities and certificates for the TLS tests, written as
PEM files the way Kafka's PEM stores take them: a key store is one file of
the private key (unencrypted PKCS#8) and the certificate chain, a trust
store a file of CA certificates; or as PKCS12 stores written by the JDK's
keytool, the way Java users make them."""

import datetime
import ipaddress
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
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

    def write_pkcs12_trust_store(self, path, password=None):
        """A PKCS12 trust store of this CA's certificate, written by
        `keytool -importcert`; without `password`, one with no integrity
        check and no encryption (keytool's NONE algorithms), which Java
        reads without a password."""
        path = Path(path)
        pem = self.write_trust_store(path.with_name(path.name + ".ca.pem"))
        unprotected = [] if password else ["-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE",
                                           "-J-Dkeystore.pkcs12.macAlgorithm=NONE"]
        path.unlink(missing_ok=True)
        keytool(*unprotected, "-importcert", "-noprompt", "-alias", "ca", "-file", pem, "-keystore", path,
                "-storetype", "PKCS12", "-storepass", password or "not-used")
        return path

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

    def write_pkcs12(self, path, password, store_type="PKCS12"):
        """The key and chain as a key store written by the JDK's keytool
        (`-importkeystore` from a PKCS12 that `cryptography` serialized),
        of `store_type` (PKCS12, or JKS)."""
        path = Path(path)
        key = serialization.load_pem_private_key(self.key_pem.encode(), None)
        leaf, *chain = x509.load_pem_x509_certificates(self.chain_pem.encode())
        source = path.with_name(path.name + ".source.p12")
        source.write_bytes(pkcs12.serialize_key_and_certificates(
            b"key", key, leaf, chain, serialization.BestAvailableEncryption(password.encode())))
        path.unlink(missing_ok=True)
        keytool("-importkeystore", "-noprompt", "-srckeystore", source, "-srcstoretype", "PKCS12",
                "-srcstorepass", password, "-destkeystore", path, "-deststoretype", store_type,
                "-deststorepass", password)
        source.unlink()
        return path


def keytool(*args):
    """Runs the JDK's keytool; fails with its output."""
    proc = subprocess.run(["keytool", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"keytool {' '.join(map(str, args))}:\n{proc.stdout}{proc.stderr}"
    return proc
