"""Regenerates the test PKI of mlsec-attest's certificate-method tests.

    python3 make_pki.py   (needs the `cryptography` package)

root (P-384, self-signed CA) -> intermediate (P-384 CA) -> leaves:
  leaf.pem          P-256, KU digitalSignature, EKU codeSigning, valid 2025-01-01 .. 2125-01-01
  leaf-p384.pem     P-384, same usages and validity
  leaf-expired.pem  P-256, valid 2020-01-01 .. 2021-01-01
  leaf-future.pem   P-256, valid 2120-01-01 .. 2121-01-01
  leaf-server.pem   P-256, EKU serverAuth only (not for code signing)
  other-root.pem    an unrelated self-signed CA
Private keys are PKCS#8 PEM next to each certificate (test keys, nothing else).
"""
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def key(curve):
    return ec.generate_private_key(curve)


def save_key(name, k):
    with open(f"{name}.key", "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))


def save_cert(name, c):
    with open(f"{name}.pem", "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.PEM))


def cert(subject_cn, subject_key, issuer_cert, issuer_key, ca, start, end, eku=None, ku_sign=True):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = issuer_cert.subject if issuer_cert is not None else name
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
         .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    elif ku_sign:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if issuer_cert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return b.sign(issuer_key, hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256())


def t(y):
    return dt.datetime(y, 1, 1, tzinfo=dt.timezone.utc)


root_key = key(ec.SECP384R1())
root = cert("mlsec test root", root_key, None, root_key, True, t(2024), t(2124))
inter_key = key(ec.SECP384R1())
inter = cert("mlsec test intermediate", inter_key, root, root_key, True, t(2024), t(2124))
save_cert("root", root)
save_cert("intermediate", inter)
code = [ExtendedKeyUsageOID.CODE_SIGNING]
for name, curve, start, end, eku in [
    ("leaf", ec.SECP256R1(), t(2025), t(2125), code),
    ("leaf-p384", ec.SECP384R1(), t(2025), t(2125), code),
    ("leaf-expired", ec.SECP256R1(), t(2020), t(2021), code),
    ("leaf-future", ec.SECP256R1(), t(2120), t(2121), code),
    ("leaf-server", ec.SECP256R1(), t(2025), t(2125), [ExtendedKeyUsageOID.SERVER_AUTH]),
]:
    k = key(curve)
    save_key(name, k)
    save_cert(name, cert(f"mlsec test signer {name}", k, inter, inter_key, False, start, end, eku))
other_key = key(ec.SECP256R1())
save_cert("other-root", cert("unrelated root", other_key, None, other_key, True, t(2024), t(2124)))
