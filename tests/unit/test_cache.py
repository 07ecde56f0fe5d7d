from __future__ import annotations

from pathlib import Path

import pytest

from conjure_sandbox.cache import CacheStore, exported, parse_cache, spec_fields
from conjure_sandbox.compression import GZIP, ZSTD
from conjure_sandbox.errors import SandboxError

BOTH = ("linux/amd64", "linux/arm64")


@pytest.mark.parametrize(
    ("value", "kind", "location"),
    [
        ("none", "none", ""),
        ("/var/cache/b", "local", "/var/cache/b"),
        ("./b", "local", "b"),
        ("~/b", "local", str(Path.home() / "b")),
        ("127.0.0.1:5000/conjure/cache", "registry", "127.0.0.1:5000/conjure/cache"),
        (
            "ghcr.io/holsee/conjure-sandbox-cache",
            "registry",
            "ghcr.io/holsee/conjure-sandbox-cache",
        ),
    ],
)
def test_cache_values(value: str, kind: str, location: str) -> None:
    assert parse_cache(value) == CacheStore(kind, location)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["reg/cache:tag", "reg/cache@sha256:abc", "Reg/Cache", "%%garbage%%", "cache"]
)
def test_a_registry_cache_is_a_repository_without_tag(value: str) -> None:
    with pytest.raises(SandboxError, match="neither a directory nor a registry repository"):
        parse_cache(value)


def test_each_variant_and_platform_set_has_its_own_local_scope() -> None:
    store = CacheStore("local", "/c")
    scopes = {
        store.scope(v, p)
        for v in ("full", "node")
        for p in (("linux/amd64",), ("linux/arm64",), BOTH)
    }
    assert len(scopes) == 6
    assert store.exports("full", BOTH, GZIP) == (
        "type=local,dest=/c/full/linux-amd64+linux-arm64,mode=max,ignore-error=true,"
        "compression=gzip,force-compression=true",
    )


def test_a_multi_platform_build_also_imports_each_single_platform_scope() -> None:
    store = CacheStore("registry", "r:5000/c")
    assert store.imports("node", BOTH) == (
        "type=registry,ref=r:5000/c:node-linux-amd64_linux-arm64",
        "type=registry,ref=r:5000/c:node-linux-amd64",
        "type=registry,ref=r:5000/c:node-linux-arm64",
    )
    assert store.exports("node", ("linux/arm64",), ZSTD) == (
        "type=registry,ref=r:5000/c:node-linux-arm64,mode=max,ignore-error=true,"
        f"compression=zstd,compression-level={ZSTD.level},force-compression=true",
    )


def test_a_single_platform_build_also_imports_the_scope_of_all_its_platforms() -> None:
    store = CacheStore("local", "/c")
    assert store.imports("full", ("linux/arm64",), BOTH) == (
        "type=local,src=/c/full/linux-arm64",
        "type=local,src=/c/full/linux-amd64+linux-arm64",
    )
    assert store.imports("full", BOTH, BOTH) == store.imports("full", BOTH)
    assert store.imports("full", ("linux/s390x",), BOTH) == ("type=local,src=/c/full/linux-s390x",)


def test_no_store_means_no_import_or_export() -> None:
    assert CacheStore("none").imports("full", BOTH) == ()
    assert CacheStore("none").exports("full", BOTH, ZSTD) == ()


def test_a_local_cache_counts_as_exported_once_its_index_exists(tmp_path: Path) -> None:
    spec = CacheStore("local", str(tmp_path)).exports("minimal", ("linux/amd64",), ZSTD)[0]
    assert not exported(spec)
    scope = tmp_path / "minimal" / "linux-amd64"
    scope.mkdir(parents=True)
    (scope / "index.json").write_text("{}")
    assert exported(spec)
    assert spec_fields(spec) == {
        "type": "local",
        "dest": str(scope),
        "mode": "max",
        "ignore-error": "true",
        "compression": "zstd",
        "compression-level": str(ZSTD.level),
        "force-compression": "true",
    }
