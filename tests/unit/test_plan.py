from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conjure_sandbox.cache import CacheStore
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.compression import GZIP, ZSTD
from conjure_sandbox.config import docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan, BuildSources, plan_build
from conjure_sandbox.provenance import Provenance
from conjure_sandbox.request import BuildRequest, Push, output_for

DATA = Path(__file__).parent / "data"
CATALOGUE = load_catalogue(docker_dir())
PROVENANCE = Provenance(version="0.1.0", revision="abc123", epoch=1767225600)


def _plan(**options: Any) -> BuildPlan:
    """A plan from the flags a maintainer would give, split as build_images splits them."""
    output = output_for(
        load=bool(options.pop("load", False)),
        push=bool(options.pop("push", False)),
        by_digest=bool(options.pop("by_digest", False)),
        export=Path("/exported") if options.pop("export", False) else None,
    )
    asked = {k: options.pop(k) for k in ("variants", "platforms", "tag", "cache") if k in options}
    sources = {"image": "example/sandbox", "provenance": PROVENANCE, "base": "b:1", **options}
    return plan_build(CATALOGUE, BuildRequest(output=output, **asked), BuildSources(**sources))


def test_one_target_per_variant_with_version_tags_and_labels() -> None:
    plan = _plan(platforms=("linux/amd64",))
    assert [t.variant.name for t in plan.targets] == ["full", "python", "node", "minimal"]
    assert [t.tags for t in plan.targets] == [
        ("example/sandbox:0.1.0",),
        ("example/sandbox:0.1.0-python",),
        ("example/sandbox:0.1.0-node",),
        ("example/sandbox:0.1.0-minimal",),
    ]
    labels = dict(plan.targets[3].labels)
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["org.opencontainers.image.base.name"] == "b:1"
    assert labels["org.opencontainers.image.title"] == "conjure-sandbox-minimal"
    assert all(value for value in labels.values())
    assert all(t.load and not t.push for t in plan.targets)


def test_catalogue_platforms_when_none_given_and_no_implicit_load_for_several() -> None:
    target = _plan(variants=("node",)).targets[0]
    assert target.platforms == ("linux/amd64", "linux/arm64")
    assert not target.load


def test_push_never_loads_and_load_with_push_is_refused() -> None:
    assert not _plan(push=True).targets[0].load
    with pytest.raises(SandboxError, match="exclude each other"):
        _plan(push=True, load=True)


def test_ca_bundle_travels_as_a_secret_not_an_argument(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    target = _plan(ca_bundle=bundle, variants=("minimal",)).targets[0]
    assert target.secrets == (f"id=ca-bundle,src={bundle}",)
    argv = target.buildx_argv()
    assert str(bundle) not in " ".join(a for a in argv if not a.startswith("id=ca-bundle"))


def test_buildx_command_line_is_the_equivalent_of_the_plan() -> None:
    target = _plan(variants=("minimal",), platforms=("linux/arm64",), cache=False).targets[0]
    argv = target.buildx_argv(builder="multi")
    assert argv[:5] == ["docker", "buildx", "build", "--builder", "multi"]
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert "--no-cache" in argv
    # A load is an --output, the one form that carries the layers' compression.
    assert "--load" not in argv
    assert argv[argv.index("--output") + 1] == (
        f"type=docker,oci-mediatypes=true,{ZSTD.exporter_options}"
    )
    assert argv[-1] == str(docker_dir())
    assert argv[argv.index("--file") + 1].endswith("Dockerfile.minimal")


def test_tag_override_keeps_the_variant_suffix() -> None:
    plan = _plan(tag="localhost/try:dev")
    assert plan.targets[0].tags == ("localhost/try:dev",)
    assert plan.targets[1].tags == ("localhost/try:dev-python",)


def test_build_metadata_cannot_become_a_tag() -> None:
    bad = Provenance(version="0.1.0+build.7", revision="r", epoch=0)
    with pytest.raises(SandboxError, match="build metadata"):
        _plan(provenance=bad)


def test_cache_scopes_appear_in_the_plan_and_the_command_line() -> None:
    store = CacheStore("local", "/c")
    target = _plan(variants=("node",), platforms=("linux/arm64",), cache_store=store).targets[0]
    argv = target.buildx_argv()
    assert argv[argv.index("--cache-from") + 1] == "type=local,src=/c/node/linux-arm64"
    exported = (
        f"type=local,dest=/c/node/linux-arm64,mode=max,ignore-error=true,{ZSTD.exporter_options}"
    )
    assert argv[argv.index("--cache-to") + 1] == exported
    described = "\n".join(_plan(variants=("node",), cache_store=store).describe())
    both = "type=local,dest=/c/node/linux-amd64+linux-arm64,mode=max,ignore-error=true"
    assert f"cache-to   {both}" in described


def test_no_cache_imports_nothing_but_still_exports() -> None:
    store = CacheStore("local", "/c")
    target = _plan(variants=("minimal",), cache=False, cache_store=store).targets[0]
    assert target.cache_from == ()
    assert len(target.cache_to) == 1


def test_pushed_images_get_a_provenance_attestation_loaded_ones_do_not() -> None:
    pushed = _plan(variants=("minimal",), push=True).targets[0]
    argv = pushed.buildx_argv()
    assert argv[argv.index("--provenance") + 1] == "mode=max"
    loaded = _plan(variants=("minimal",)).targets[0].buildx_argv()
    assert loaded[loaded.index("--provenance") + 1] == "false"


def test_inputs_digest_follows_context_base_and_recipe_not_where_the_image_goes() -> None:
    def inputs(**options: object) -> str:
        merged = {"variants": ("minimal",), "platforms": ("linux/amd64",), **options}
        return str(_plan(**merged).targets[0].inputs)

    files = {"Dockerfile.minimal": "m1", "Dockerfile.node": "n1", "requirements.lock": "r1"}
    first = inputs(context_files=files, base_id="b1")
    assert first.startswith("sha256:")
    assert first == inputs(context_files=dict(reversed(files.items())), base_id="b1")
    assert first != inputs(context_files={**files, "requirements.lock": "r2"}, base_id="b1")
    assert first != inputs(context_files={**files, "Dockerfile.minimal": "m2"}, base_id="b1")
    assert first != inputs(context_files=files, base_id="b2")
    assert first != inputs(context_files=files, base_id="b1", sbom="gen:2")
    assert first != inputs(context_files=files, base_id="b1", base="other/base:1")
    later = Provenance(version="0.1.0", revision="abc123", epoch=PROVENANCE.epoch + 1)
    assert first != inputs(context_files=files, base_id="b1", provenance=later)
    # Where the image goes and which platform it is for are no inputs: CI's
    # per-platform pushes by digest and a local build carry the same label.
    for elsewhere in (
        {"tag": "other/name:x"},
        {"platforms": ("linux/arm64",)},
        {"by_digest": True},
        {"cache_store": CacheStore("local", "/elsewhere")},
    ):
        assert first == inputs(context_files=files, base_id="b1", **elsewhere), elsewhere
    # Another variant's Dockerfile is not an input of this one.
    assert first == inputs(context_files={**files, "Dockerfile.node": "n2"}, base_id="b1")


def test_files_are_dated_by_the_base_and_the_config_by_the_commit() -> None:
    base_created = PROVENANCE.epoch - 86400
    target = _plan(variants=("minimal",), base_created=base_created).targets[0]
    args = dict(target.build_args)
    assert args["BASE_EPOCH"] == str(base_created)
    assert args["SOURCE_DATE_EPOCH"] == str(PROVENANCE.epoch)
    assert dict(target.labels)["org.opencontainers.image.created"] == PROVENANCE.created
    # Times are set in each step: the export sends the blobs BuildKit compressed once.
    assert "rewrite-timestamp" not in replace(target, layout="/l.tar").output
    # The base's time decides every file's time: it is part of the inputs label.
    rebased = _plan(variants=("minimal",), base_created=base_created + 1).targets[0]
    assert target.inputs != rebased.inputs


def test_bake_definition_mirrors_the_plan() -> None:
    plan = _plan(platforms=("linux/amd64",), cache_store=CacheStore("local", "/c"))
    bake = plan.bake_definition()
    assert bake["group"] == {"default": {"targets": ["full", "python", "node", "minimal"]}}
    minimal = bake["target"]["minimal"]  # type: ignore[index]
    target = plan.targets[3]
    assert minimal["tags"] == list(target.tags)
    assert minimal["labels"] == dict(target.labels)
    assert minimal["cache-to"] == list(target.cache_to)
    assert minimal["output"] == [f"type=docker,oci-mediatypes=true,{ZSTD.exporter_options}"]
    assert minimal["dockerfile"] == str(target.variant.dockerfile)


def test_bake_loads_what_invoke_build_exports_to_a_layout_and_attests_the_same_sbom() -> None:
    plan = _plan(platforms=("linux/amd64",), sbom="gen:1")
    exported = replace(plan.targets[3], layout="/scratch/minimal.tar")
    bake = BuildPlan((exported,)).bake_definition()
    minimal = bake["target"]["minimal"]  # type: ignore[index]
    assert exported.output.startswith("type=oci,dest=/scratch/minimal.tar")
    assert minimal["output"] == [f"type=docker,oci-mediatypes=true,{ZSTD.exporter_options}"]
    assert "type=sbom,generator=gen:1" in minimal["attest"]


def test_every_output_and_cache_export_carries_the_chosen_compression() -> None:
    for compression in (ZSTD, GZIP):
        store = CacheStore("local", "/c")
        plan = _plan(platforms=("linux/amd64",), compression=compression, cache_store=store)
        loaded = plan.targets[0]
        layout = replace(loaded, delivery=Push(), layout="/l.tar")
        pushed = replace(loaded, delivery=Push())
        for target in (loaded, layout, pushed):
            assert target.output.endswith(f",{compression.exporter_options}")
        assert loaded.cache_to[0].endswith(f",{compression.exporter_options}")
    assert ZSTD.exporter_options == (
        f"compression=zstd,compression-level={ZSTD.level},force-compression=true"
    )
    assert GZIP.exporter_options == "compression=gzip,force-compression=true"


def test_the_compression_is_an_input_so_an_image_in_the_other_is_not_up_to_date() -> None:
    zstd, gzip = (_plan(variants=("minimal",), compression=c).targets[0] for c in (ZSTD, GZIP))
    assert zstd.inputs != gzip.inputs
    assert replace(zstd, labels=()).recipe() != replace(gzip, labels=()).recipe()


def test_the_command_a_build_runs_is_the_one_the_dry_run_prints(tmp_path: Path) -> None:
    """``run_target`` is handed a runner here instead of python-on-whales' (no engine in
    unit tests); it records the command it is given and replays what buildx wrote for a
    real build (data/rawjson), which the log and the step counts are made from."""
    from conjure_sandbox.runner import run_target

    plan = replace(_plan(variants=("node",), platforms=("linux/arm64",)), context="ctx")
    target = replace(plan.targets[0], metadata=str(tmp_path / "node.metadata.json"))
    plan = replace(plan, targets=(target,))
    printed = [line for line in plan.describe() if line.startswith("  $ ")]
    ran: list[list[str]] = []

    def runner(argv: list[str]) -> list[tuple[str, bytes]]:
        ran.append(argv)
        recorded = DATA / "rawjson" / "cached-cache-export-refused.json"
        return [("stderr", line) for line in recorded.read_bytes().splitlines(keepends=True)]

    logged: list[str] = []
    result = run_target(None, target, plan.builder, logged.append, "plain", plan.context, runner)  # type: ignore[arg-type]
    assert result.ok
    assert [shlex.join(argv) for argv in ran] == [line.removeprefix("  $ ") for line in printed]
    assert ran[0][:3] == ["docker", "--context", "ctx"]
    assert ran[0][ran[0].index("--metadata-file") + 1] == target.metadata
    assert logged[0] == "[node] #1 [internal] load build definition from Dockerfile"
    assert "[node] #5 CACHED" in logged
    assert (result.cached_steps, result.total_steps) == (2, 2)
    assert result.cache_error is not None
