"""publish: turn built models into the catalog site (pages, files, Netron viewer, index.json).

    >>> from quantzoo.publish import publish_site, BuiltModel, BuiltVariant  # doctest: +SKIP
    >>> publish_site(built_models, "site", registry=reg)  # doctest: +SKIP

`data` holds the built results and decides the recommended variant and file names (pure),
`index` writes index.json through the `quantzoo.catalog` schema, `pages` makes the page contexts,
`charts` draws SVG, `render` fills the Jinja2 templates from site_src/, `netron` bundles the
graph viewer and `site` writes it all and runs MkDocs.
"""

from __future__ import annotations

from .data import BuiltCustomOp, BuiltModel, BuiltVariant, recommend
from .index import index_document, index_entry, index_json_bytes
from .site import PublishReport, publish_site

__all__ = ["BuiltCustomOp", "BuiltModel", "BuiltVariant", "PublishReport", "index_document", "index_entry", "index_json_bytes",
           "publish_site", "recommend"]
