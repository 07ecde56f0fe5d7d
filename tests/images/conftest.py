"""Image tests run per variant: ``pytest tests/images --variant node`` (nox passes it).

Each selected variant is built once per session on the local base, loaded
into the engine, and handed to the tests as an image reference.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from conjure_sandbox.catalogue import Variant, load_catalogue
from conjure_sandbox.config import Settings, docker_dir

CATALOGUE = load_catalogue(docker_dir())
TEST_IMAGE = "conjure-sandbox-test/sandbox"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--variant",
        action="append",
        default=[],
        choices=list(CATALOGUE.names),
        help="variant to test (repeatable; default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        chosen = CATALOGUE.select(metafunc.config.getoption("--variant"))
        metafunc.parametrize("variant", chosen, ids=[v.name for v in chosen], scope="session")


@pytest.fixture(scope="session")
def image(variant: Variant) -> str:
    """The variant built for the host platform on the local base and loaded."""
    from conjure_sandbox.build import build_images

    settings = replace(Settings.from_env(), image=TEST_IMAGE, base="local")
    lines: list[str] = []
    plan, results = build_images(settings=settings, variants=(variant.name,), log=lines.append)
    (result,) = results
    if not result.ok:
        pytest.fail(f"building {variant.name} failed:\n{result.error}", pytrace=False)
    return plan.targets[0].tags[0]
