"""Build, test and publish the conjure sandbox images."""

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.version import package_version

__all__ = ["SandboxError", "__version__", "package_version"]

__version__ = package_version()
