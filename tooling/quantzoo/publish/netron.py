"""Bundle the Netron graph viewer from the installed `netron` package into the site.

Netron's browser app is plain static files, but its index.html is written for netron's own
server and needs three edits before a static catalog can host it offline:

- the `<meta name="date">` tag goes: the app compares that build date with today and refuses
  to start once it is old;
- `<meta name="version">` becomes ``0.0.0``: a real version number switches telemetry on;
- a same-origin ``consent.js`` runs before index.js and sets the `consent` cookie; without it
  the app asks ipinfo.io where the reader is and waits on a consent dialog. It must be a file,
  not an inline script, because the page's Content-Security-Policy forbids inline scripts.

See ARCHITECTURE.md, "The bundled graph viewer".
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..errors import QuantzooError

_SKIP_SUFFIXES = (".py", ".pyc")


def netron_dir() -> Path:
    """The folder of the installed netron package (holds index.html and the app)."""
    try:
        import netron
    except ImportError:
        raise QuantzooError("the netron package is not installed; it is a quantzoo dependency: "
                            "run `pip install 'netron>=9.0'` (or `make install`)") from None
    root = Path(netron.__file__).resolve().parent
    if not (root / "index.html").is_file():
        raise QuantzooError(f"the netron package at {root} has no index.html; expected the browser app "
                            "(netron>=9.0); reinstall it with `pip install --force-reinstall netron`")
    return root


def patch_index_html(html: str, consent_script: str = "consent.js") -> str:
    """Netron's index.html made fit for a static catalog (see the module docstring).

    >>> page = ('<head><meta name="version" content="9.3.3">\\n<meta name="date" content="2026-10-23 19:50:08">\\n'
    ...         '<script type="text/javascript" src="index.js"></script></head>')
    >>> print(patch_index_html(page))
    <head><meta name="version" content="0.0.0">
    <script type="text/javascript" src="consent.js"></script>
    <script type="text/javascript" src="index.js"></script></head>
    """
    out, n_version = re.subn(r'<meta\s+name="version"\s+content="[^"]*"\s*/?>',
                             '<meta name="version" content="0.0.0">', html)
    out = re.sub(r'[ \t]*<meta\s+name="date"\s+content="[^"]*"\s*/?>\r?\n?', "", out)
    out, n_script = re.subn(r'(<script[^>]*\bsrc="index\.js"[^>]*></script>)',
                            f'<script type="text/javascript" src="{consent_script}"></script>\n\\1', out, count=1)
    if not n_version or not n_script:
        raise QuantzooError("netron's index.html no longer has the expected <meta name=\"version\"> and "
                            "<script src=\"index.js\"> tags, so it cannot be made to run offline without telemetry; "
                            "pin a netron version this quantzoo knows (>=9.0,<10) or update publish/netron.py")
    if 'name="date"' in out:
        raise QuantzooError("could not remove <meta name=\"date\"> from netron's index.html; "
                            "update publish/netron.py for this netron version")
    return out


def bundle_netron(dest: Path, consent_js: Path) -> Path:
    """Copy the viewer into `dest` (index.html patched, consent.js added); returns dest/index.html."""
    src = netron_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir()):
        if p.is_file() and not p.name.endswith(_SKIP_SUFFIXES) and p.name != "index.html":
            shutil.copyfile(p, dest / p.name)
    (dest / "index.html").write_text(patch_index_html((src / "index.html").read_text(encoding="utf-8")),
                                     encoding="utf-8")
    shutil.copyfile(consent_js, dest / "consent.js")
    return dest / "index.html"
