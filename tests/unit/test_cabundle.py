from __future__ import annotations

from pathlib import Path

import pytest

from conjure_sandbox.cabundle import resolve_ca_bundle, secret_spec
from conjure_sandbox.errors import SandboxError

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_auto_takes_the_first_host_bundle_that_exists(tmp_path: Path) -> None:
    second = tmp_path / "b.pem"
    second.write_text(PEM)
    assert resolve_ca_bundle("auto", (tmp_path / "a.pem", second)) == second
    assert resolve_ca_bundle("auto", (tmp_path / "a.pem",)) is None


def test_none_disables_and_a_path_is_checked(tmp_path: Path) -> None:
    assert resolve_ca_bundle("none") is None
    good = tmp_path / "corp.pem"
    good.write_text(PEM)
    assert resolve_ca_bundle(str(good)) == good
    with pytest.raises(SandboxError, match="does not exist"):
        resolve_ca_bundle(str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(SandboxError, match="no PEM certificate"):
        resolve_ca_bundle(str(junk))


def test_secret_spec_names_the_id_the_dockerfiles_mount() -> None:
    assert secret_spec(Path("/x/ca.pem")) == "id=ca-bundle,src=/x/ca.pem"
    helper = (Path(__file__).parents[2] / "docker/with-ca-bundle").read_text()
    assert "/run/secrets/ca-bundle" in helper
