"""Which failed builds are run once more: those BuildKit cut off or a registry 5xx
ended, not failing steps."""

from __future__ import annotations

from conjure_sandbox.runner import is_transient


def test_a_build_cut_off_by_buildkit_is_transient_a_failing_step_is_not() -> None:
    cut_off = (
        "#21 CANCELED\n"
        "ERROR: (*service).Write failed: rpc error: code = Canceled desc = context canceled\n"
        "ERROR: failed to solve: Canceled: error writing layer blob: Canceled: "
        "grpc: the client connection is closing: context canceled"
    )
    step_failed = (
        "#9 0.2 node step broke\n"
        'ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: '
        "exit code: 1\ncontext canceled"
    )
    assert is_transient(cut_off)
    assert not is_transient(step_failed)
    assert not is_transient("ERROR: failed to solve: base:latest: not found")


def test_a_registry_5xx_while_pushing_is_transient() -> None:
    pushed = (
        "#29 ERROR: unexpected status from HEAD request to "
        "http://127.0.0.1:5000/v2/x/manifests/0-python: 500 Internal Server Error"
    )
    assert is_transient(pushed)
    assert not is_transient(pushed.replace("500 Internal Server Error", "404 Not Found"))
