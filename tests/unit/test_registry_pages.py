"""Tag-list pagination: the next page a ``Link`` header names (pure)."""

from __future__ import annotations

import pytest

from conjure_sandbox.registry import Repository
from conjure_sandbox.registry.client import _next_page

REPO = Repository("ghcr.io", "holsee/conjure-sandbox")


@pytest.mark.parametrize(
    ("link", "path"),
    [
        (
            '</v2/holsee/conjure-sandbox/tags/list?last=0.1.0&n=100>; rel="next"',
            "tags/list?last=0.1.0&n=100",
        ),
        (
            "<https://ghcr.io/v2/holsee/conjure-sandbox/tags/list?n=2&last=b>; rel=next",
            "tags/list?n=2&last=b",
        ),
        ("", ""),
        ('</v2/other/repo/tags/list?last=x>; rel="next"', ""),  # never leaves the repository
        ('</v2/holsee/conjure-sandbox/tags/list?last=x>; rel="prev"', ""),
    ],
)
def test_next_page(link: str, path: str) -> None:
    assert _next_page(link, REPO) == path
