"""The extra CA bundle handed to builds as a BuildKit secret.

Behind a TLS-intercepting proxy, pip, npm and curl inside a build fail with
CERTIFICATE_VERIFY_FAILED: the host trusts the proxy through its system bundle,
the container does not. Builds mount the bundle as secret ``ca-bundle`` for the
length of one RUN step (see docker/with-ca-bundle), so it never reaches a
layer, a label or the history.
"""

from __future__ import annotations

from pathlib import Path

from conjure_sandbox.errors import SandboxError

SECRET_ID = "ca-bundle"
HOST_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
    Path("/etc/ssl/cert.pem"),  # macOS, BSDs
)


def resolve_ca_bundle(choice: str, host_bundles: tuple[Path, ...] = HOST_BUNDLES) -> Path | None:
    """The bundle to pass for ``choice``: a path, ``auto`` (first host bundle found) or ``none``."""
    if choice == "none":
        return None
    if choice == "auto":
        return next((p for p in host_bundles if p.is_file()), None)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise SandboxError(
            f"CA bundle {path} does not exist",
            "point --ca-bundle / CONJURE_CA_BUNDLE at a PEM file, or set it to 'none'",
        )
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes():
        raise SandboxError(f"CA bundle {path} holds no PEM certificate", "pass a PEM bundle")
    return path


def secret_spec(bundle: Path) -> str:
    """The ``--secret`` value buildx takes for the bundle."""
    return f"id={SECRET_ID},src={bundle}"
