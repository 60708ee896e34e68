"""Certificates for a local control plane: one CA, a serving cert, an admin client cert,
the service-account signing key and, for a real node, the kubelet's client and serving
certs and the API server's client cert for kubelets; PEM files (EC P-256, 1 year)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: Key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
    )


def write_pki(d: Path, node: tuple[str, str] | None = None) -> None:
    """Create ca.{crt,key}, apiserver.{crt,key}, admin.{crt,key}, apiserver-kubelet-client,
    sa.{key,pub} in d; with node=(name, address) also kubelet (its client cert) and
    kubelet-server (serving, for that address)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("kube-migrate-dev-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(d / "ca.key", ca_key)

    def issue(
        stem: str, cn: str, orgs: tuple[str, ...], server: bool, sans: tuple[str, ...] = ()
    ) -> None:
        key = _key()
        b = _builder(_name(cn, orgs), ca_name, key)
        if server:
            names: list[x509.GeneralName] = []
            for san in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    names.append(x509.DNSName(san))
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        (d / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(d / f"{stem}.key", key)

    api_sans = ("localhost", "kubernetes", "kubernetes.default.svc", "127.0.0.1", "10.96.0.1")
    issue("apiserver", "kube-apiserver", (), server=True, sans=api_sans)
    issue("admin", "kube-migrate-admin", ("system:masters",), server=False)
    issue("kwok", "kwok-controller", ("system:masters",), server=False)
    issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",), False)
    if node:
        name, addr = node
        issue("kubelet", f"system:node:{name}", ("system:nodes",), server=False)
        issue("csi", "kube-migrate-csi", ("system:masters",), server=False)  # csi.py's
        issue("kubelet-server", name, (), server=True, sans=(name, addr))
    sa = _key()
    _write_key(d / "sa.key", sa)
    (d / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def kubeconfig(server: str, d: Path, name: str, user: str = "admin") -> str:
    """A self-contained kubeconfig (YAML text): CA and client cert embedded."""

    def b64(f: str) -> str:
        return base64.b64encode((d / f).read_bytes()).decode()

    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority-data: {b64("ca.crt")}
users:
- name: {name}-{user}
  user:
    client-certificate-data: {b64(f"{user}.crt")}
    client-key-data: {b64(f"{user}.key")}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}-{user}
current-context: {name}
"""
