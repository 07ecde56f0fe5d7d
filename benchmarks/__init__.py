"""Maintainer benchmarks (``invoke bench``): never imported by the library."""
