"""publish.netron: the bundled graph viewer is patched to run offline without telemetry."""

from __future__ import annotations

import re

import pytest

from quantzoo.errors import QuantzooError
from quantzoo.publish.netron import netron_dir, patch_index_html


def test_netron_index_html_is_patched_for_a_static_offline_site():
    html = (netron_dir() / "index.html").read_text(encoding="utf-8")
    assert '<meta name="date"' in html and '<meta name="version" content="0.0.0">' not in html
    out = patch_index_html(html)
    assert '<meta name="date"' not in out
    assert re.search(r'<meta name="version" content="0\.0\.0">', out)
    assert out.index('src="consent.js"') < out.index('src="index.js"')


def test_netron_patch_refuses_an_index_html_it_does_not_recognise():
    with pytest.raises(QuantzooError, match="no longer has the expected"):
        patch_index_html("<html><head><title>Netron</title></head></html>")
