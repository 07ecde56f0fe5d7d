"""Talking to registries, one concept a module: references, auth, passing failures, the
reading client and the layout upload. The names other modules use are here."""

from conjure_sandbox.registry.auth import Credentials, credentials_from_env
from conjure_sandbox.registry.client import (
    RemoteManifest,
    fetch_blob,
    fetch_document,
    fetch_manifest,
    fetch_manifest_bytes,
    layer_sizes,
    list_tags,
    platform_image,
    tag_digest,
)
from conjure_sandbox.registry.failures import (
    NETWORK_ERROR,
    NETWORK_ERRORS,
    SERVER_ERROR,
    ServerError,
    network_reason,
    retry_after,
    retry_network,
    unreachable,
)
from conjure_sandbox.registry.layout import push_layout
from conjure_sandbox.registry.reference import (
    DIGEST,
    DIGEST_PATTERN,
    DIGEST_REF,
    LOOPBACK_HOSTS,
    REPOSITORY,
    Repository,
    digest_in,
    digest_of,
    looks_like_host,
    parse_repository,
    split_digest_ref,
)

__all__ = [
    "DIGEST",
    "DIGEST_PATTERN",
    "DIGEST_REF",
    "LOOPBACK_HOSTS",
    "NETWORK_ERROR",
    "NETWORK_ERRORS",
    "REPOSITORY",
    "SERVER_ERROR",
    "Credentials",
    "RemoteManifest",
    "Repository",
    "ServerError",
    "credentials_from_env",
    "digest_in",
    "digest_of",
    "fetch_blob",
    "fetch_document",
    "fetch_manifest",
    "fetch_manifest_bytes",
    "layer_sizes",
    "list_tags",
    "looks_like_host",
    "network_reason",
    "parse_repository",
    "platform_image",
    "push_layout",
    "retry_after",
    "retry_network",
    "split_digest_ref",
    "tag_digest",
    "unreachable",
]
