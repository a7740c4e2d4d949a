"""The peer-test policy of docs/testing.md for the Python tests.

A test that needs a third-party program or module (a "peer": python3-grpcio,
Prometheus, ONNX Runtime...) and finds it missing skips on a developer's
machine (exit code 77, which ctest reports as skipped: the test is
registered with SKIP_RETURN_CODE 77) and fails under CI=true, where
scripts/setup-*.sh must have installed it.

Scripts import it with:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "testing"))
    import peer
"""
import os
import sys

SKIP_RETURN_CODE = 77


def in_ci():
    return os.environ.get("CI", "") in ("true", "1")


def require(available, message):
    """Returns when `available`; otherwise exits: 1 under CI, 77 elsewhere."""
    if available:
        return
    if in_ci():
        print("FAIL: peer missing (CI=true, so this fails): " + message, flush=True)
        sys.exit(1)
    print("SKIPPED: peer missing (fails under CI=true): " + message, flush=True)
    sys.exit(SKIP_RETURN_CODE)


def skip_reason(available, message):
    """For unittest suites: the skipTest reason when the peer is missing
    outside CI, or None (available, or CI: the test runs and fails)."""
    if available or in_ci():
        return None
    return "peer missing (fails under CI=true): " + message
