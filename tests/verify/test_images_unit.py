import base64

import pytest

from modelreg.verify.images import ImageRef, credentials_for, parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "127.0.0.1:5000/serving/sklearn:1.5",
            ImageRef("127.0.0.1:5000", "serving/sklearn", "1.5", None),
        ),
        (
            "registry.internal/serving/sklearn",
            ImageRef("registry.internal", "serving/sklearn", "latest", None),
        ),
        (f"registry.internal/a/b@{D}", ImageRef("registry.internal", "a/b", None, D)),
        (f"registry.internal/a/b:1@{D}", ImageRef("registry.internal", "a/b", "1", D)),
        ("nginx", ImageRef("docker.io", "library/nginx", "latest", None)),
        ("team/model:2", ImageRef("docker.io", "team/model", "2", None)),
        ("localhost/model:2", ImageRef("localhost", "model", "2", None)),
    ],
)
def test_parse_reference(ref, expected):
    assert parse_reference(ref) == expected


def test_pinned_reference_and_bad_digest():
    assert parse_reference("r.io/a:1").pinned(D) == f"r.io/a@{D}"
    with pytest.raises(ValueError, match="sha256"):
        parse_reference("r.io/a@sha256:123")


def test_credentials_from_dockerconfigjson():
    auth = base64.b64encode(b"u:p:with:colons").decode()
    configs = [
        {"auths": {"other.io": {"username": "x", "password": "y"}}},
        {"auths": {"https://127.0.0.1:5001/v2/": {"auth": auth}}},
    ]
    assert credentials_for("127.0.0.1:5001", configs) == ("u", "p:with:colons")
    assert credentials_for("other.io", configs) == ("x", "y")
    assert credentials_for("nowhere.io", configs) is None
