"""publish: turn built models into the catalog site (pages, files, Netron viewer, index.json).

    >>> from quantzoo.publish import publish_site, BuiltModel, BuiltVariant  # doctest: +SKIP
    >>> publish_site(built_models, "site", registry=reg)  # doctest: +SKIP

`data` decides what the site says (pure), `charts` draws SVG, `render` fills the Jinja2
templates from site_src/, `netron` bundles the graph viewer and `site` writes it all and runs
MkDocs.
"""

from __future__ import annotations

from .data import (BuiltModel, BuiltVariant, index_document, index_entry, index_json_bytes, recommend)
from .site import PublishReport, publish_site

__all__ = ["BuiltModel", "BuiltVariant", "PublishReport", "index_document", "index_entry", "index_json_bytes",
           "publish_site", "recommend"]
