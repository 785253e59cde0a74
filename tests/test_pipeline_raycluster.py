"""pipeline/raycluster.py: a head's address, the connect timeout, and reaching a head in bounded time.
The executor's own tests (a real local Ray instance, the CLI) are in test_pipeline_rayexec.py."""

from __future__ import annotations

import importlib.util

import pytest

from quantzoo.errors import UsageError
from quantzoo.pipeline.raycluster import CONNECT_TIMEOUT, default_connect_timeout, parse_address

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (pip install 'quantzoo[ray]')")


def test_an_address_is_host_and_port_and_anything_else_shows_the_form():
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("[fe80::1]:6380") == ("fe80::1", 6380)
    for bad in ("ray-head", "ray-head:0", "ray-head:65536", "ray head:6379", ""):
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_address(bad)


def test_the_connect_timeout_comes_from_the_environment_and_must_be_positive(monkeypatch):
    monkeypatch.delenv(CONNECT_TIMEOUT, raising=False)
    assert default_connect_timeout() == 30.0
    monkeypatch.setenv(CONNECT_TIMEOUT, "2.5")
    assert default_connect_timeout() == 2.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(CONNECT_TIMEOUT, bad)
        with pytest.raises(UsageError, match=f"{CONNECT_TIMEOUT} must be a number of seconds above 0, found '{bad}'"):
            default_connect_timeout()


@needs_ray
def test_a_server_that_is_not_a_ray_head_costs_the_timeout_and_no_more():
    import socket
    import time

    from quantzoo.errors import QuantzooError
    from quantzoo.pipeline.raycluster import reach_head

    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(QuantzooError, match="within 1.5 s: .* no answer as a Ray head"):
            reach_head(address, timeout=1.5)
        assert time.monotonic() - start < 5
