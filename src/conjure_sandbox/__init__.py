"""Build, test and publish the conjure sandbox images; ``ensure_image()`` for the library side."""

from conjure_sandbox.ensure import ensure_image, image_ref
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.version import package_version

__all__ = ["SandboxError", "__version__", "ensure_image", "image_ref", "package_version"]

__version__ = package_version()
