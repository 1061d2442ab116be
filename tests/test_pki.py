import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modelreg import pki


def test_issued_certificate_chains_to_ca_and_carries_sans():
    ca = pki.new_ca("test-ca")
    leaf = pki.issue(ca, "apiserver", dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)

    cert.verify_directly_issued_by(ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=3000)


def test_client_certificate_has_organizations_as_groups():
    ca = pki.new_ca("test-ca")
    leaf = pki.issue(ca, "alice", organizations=("ml-approvers",), server=False, client=True)
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["ml-approvers"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ca_is_a_ca_and_leaf_is_not():
    ca = pki.new_ca("test-ca")
    leaf = pki.issue(ca, "x")
    ca_bc = x509.load_pem_x509_certificate(ca.cert_pem).extensions.get_extension_for_class(
        x509.BasicConstraints
    )
    leaf_bc = x509.load_pem_x509_certificate(leaf.cert_pem).extensions.get_extension_for_class(
        x509.BasicConstraints
    )
    assert ca_bc.value.ca is True
    assert leaf_bc.value.ca is False
    assert isinstance(
        x509.load_pem_x509_certificate(leaf.cert_pem).public_key(), ec.EllipticCurvePublicKey
    )


def test_service_account_keys_are_a_matching_rsa_pair():
    from cryptography.hazmat.primitives import serialization

    pair = pki.new_service_account_keys()
    private = serialization.load_pem_private_key(pair.key_pem, password=None)
    public = serialization.load_pem_public_key(pair.cert_pem)
    assert private.public_key().public_numbers() == public.public_numbers()


def test_split_names_separates_ip_addresses() -> None:
    assert pki.split_names(("svc.ns.svc", "127.0.0.1", "::1")) == (
        ("svc.ns.svc",),
        ("127.0.0.1", "::1"),
    )


def test_serves_checks_issuer_names_key_and_remaining_validity() -> None:
    now = dt.datetime.now(dt.UTC)
    year = dt.timedelta(days=365)
    ca, other_ca = pki.new_ca("ca"), pki.new_ca("other")
    names = ("svc.ns.svc", "127.0.0.1")
    leaf = pki.issue(ca, "svc", dns_names=("svc.ns.svc",), ip_addresses=("127.0.0.1",))
    assert pki.serves(leaf, ca.cert_pem, names, now, year)
    assert not pki.serves(leaf, other_ca.cert_pem, names, now, year)
    assert not pki.serves(leaf, ca.cert_pem, (*names, "svc.other.svc"), now, year)
    assert not pki.serves(leaf, ca.cert_pem, names, now, dt.timedelta(days=3700))
    mismatched = pki.KeyPair(leaf.cert_pem, pki.issue(ca, "x").key_pem)
    assert not pki.serves(mismatched, ca.cert_pem, names, now, year)
    assert not pki.serves(pki.KeyPair(b"garbage", b"garbage"), ca.cert_pem, names, now, year)
