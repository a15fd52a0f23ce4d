"""The client's address in a trusted proxy's header."""

from __future__ import annotations

from server.connections import Proxies
from server.request_policy import forwarded_address


def test_forwarded_address_takes_the_rightmost_address_not_a_proxy() -> None:
    proxies = Proxies(["10.0.0.0/8", "::1"])
    header = "X-Forwarded-For"
    assert forwarded_address(header, "203.0.113.9", proxies) == "203.0.113.9"
    assert forwarded_address(header, "1.2.3.4, 203.0.113.9, 10.0.0.2", proxies) == "203.0.113.9"
    assert forwarded_address(header, "10.0.0.1, 10.0.0.2", proxies) is None
    assert forwarded_address(header, "not an address", proxies) is None
    assert forwarded_address("X-Real-Ip", "2001:db8::1", proxies) == "2001:db8::1"
    assert forwarded_address("X-Real-Ip", "1.2.3.4, 5.6.7.8", proxies) is None
    assert "10.1.2.3" in proxies and "::ffff:10.1.2.3" in proxies and "11.0.0.1" not in proxies
