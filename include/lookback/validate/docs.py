"""Make a Data Docs site readable without the Internet.

Great Expectations writes pages that load jQuery, Bootstrap, Bootstrap Table and Font
Awesome from public CDNs; without them the index is an empty page. The networks that read
these reports are closed, so the files ship with the project (``include/data_docs_assets``)
and are copied into the site, and every page is pointed at its copy. Other external scripts
and style sheets (Vega charts and a dark theme: nothing the pages need) are removed, so
that no page waits on a host it cannot reach.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from lookback.paths import include_dir

VENDOR = Path("static") / "vendor"

# The file name at the end of a CDN address → the local copy under static/vendor/.
LOCAL_COPIES = {
    "jquery-3.7.1.min.js": "js/jquery.min.js",
    "popper.min.js": "js/popper.min.js",
    "bootstrap.min.js": "js/bootstrap.min.js",
    "bootstrap.min.css": "css/bootstrap.min.css",
    "bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "bootstrap-table-filter-control.min.js": "js/bootstrap-table-filter-control.min.js",
    "bootstrap-table-filter-control.min.css": "css/bootstrap-table-filter-control.min.css",
    "all.min.css": "css/fontawesome.min.css",
    "bootstrap-datepicker.min.js": "js/bootstrap-datepicker.min.js",  # the filter controls call it
    "bootstrap-datepicker.min.css": "css/bootstrap-datepicker.min.css",
}
# Subresource-integrity and CORS attributes: a page opened from disk cannot use them.
_CROSS_ORIGIN = re.compile(r"""\s+(?:integrity|crossorigin)=["'][^"']*["']""", re.IGNORECASE)

_EXTERNAL_TAG = re.compile(
    r"""<script\b[^>]*\bsrc=["'](?P<script>https?://[^"']+)["'][^>]*>\s*</script>"""
    r"""|<link\b[^>]*\bhref=["'](?P<link>https?://[^"']+)["'][^>]*/?>""",
    re.IGNORECASE,
)


def assets_dir() -> Path:
    return include_dir() / "data_docs_assets"


def _localise(page: Path, site: Path) -> str:
    text = page.read_text(encoding="utf-8")
    prefix = Path(os.path.relpath(site / VENDOR, page.parent)).as_posix()

    def replace(match: re.Match[str]) -> str:
        url = match.group("script") or match.group("link")
        local = LOCAL_COPIES.get(url.rsplit("/", 1)[-1].split("?", 1)[0])
        if local is None:
            return ""
        return _CROSS_ORIGIN.sub("", match.group(0).replace(url, f"{prefix}/{local}"))

    return _EXTERNAL_TAG.sub(replace, text)


def localise_site(site: Path) -> int:
    """Copy the assets into ``site`` and point every page at them; returns pages changed."""
    shutil.copytree(assets_dir(), site / VENDOR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    changed = 0
    for page in site.rglob("*.html"):
        localised = _localise(page, site)
        if localised != page.read_text(encoding="utf-8"):
            page.write_text(localised, encoding="utf-8")
            changed += 1
    return changed


def external_references(site: Path) -> list[str]:
    """Scripts and style sheets the site's pages would still fetch from elsewhere."""
    found = []
    for page in sorted(site.rglob("*.html")):
        for match in _EXTERNAL_TAG.finditer(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(site)}: {match.group('script') or match.group('link')}")
    return found
