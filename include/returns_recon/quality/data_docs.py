"""The Data Docs site: built once per check, readable offline, showing the rows that failed.

GX's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs and
the logo from S3. After each build every page is pointed at the copies in ``data_docs_assets/``
(copied to ``static/vendor/`` of the site); any other external script, stylesheet or image is
dropped, so nothing is fetched from the internet when the pages are opened.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # GX is imported only when a check runs (runner._context)
    from great_expectations.data_context.store.store import DataDocsSiteConfigTypedDict

SITE = "recon_data_docs"
ASSETS = Path(__file__).parent / "data_docs_assets"
VENDOR = "static/vendor/"
LOGO = "static/images/logo-long.png"  # shipped by GX itself
CDN_COPIES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "icons.css",
}
_EXTERNAL = r"""["']https?://[^"']*["']"""
_ASSET_TAG = re.compile(  # a tag that makes the browser fetch something
    rf"<script\b[^>]*\bsrc=(?P<s>{_EXTERNAL})[^>]*>\s*</script>|<link\b[^>]*\bhref=(?P<l>{_EXTERNAL})[^>]*>"
    rf"|<img\b[^>]*\bsrc=(?P<i>{_EXTERNAL})[^>]*>",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\(\s*["']?https?://[^)]*\)""", re.IGNORECASE)
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)=["'][^"']*["']""", re.IGNORECASE)
_SITE_STATIC = re.compile(r"""\b(src|href)=(["'])(?:\.\.?/)*static/""")  # GX miscounts "../" for the favicon


def site_config(docs_dir: Path) -> DataDocsSiteConfigTypedDict:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def show_sampled_rows(result: Any) -> None:
    """Let the pages show the sampled failing rows with their keys (e.g. item and SKU).

    GX's table of unexpected values lists the key columns only from ``unexpected_index_list``, which
    only the COMPLETE result format returns (every failing row). We validate with SUMMARY (a bounded
    sample, as the warehouse can hold millions of rows), so the sample stands in for it; the page then
    says "Sampled Unexpected Values" when the sample is not all of them. Without this the table of a
    not-null check shows only "null"."""
    for expectation_result in result.results:
        detail = expectation_result.result or {}
        sample = detail.get("partial_unexpected_index_list")
        if sample and "unexpected_index_list" not in detail:
            detail["unexpected_index_list"] = sample


def build(context: Any, docs_dir: Path) -> Path:
    """Render the site from this check's results, then make its pages offline.

    The site shows the latest check: GX removes the pages of results it no longer holds (an
    ephemeral context holds this check's only); the empty folders they leave are removed too."""
    context.build_data_docs(site_names=[SITE])
    make_offline(docs_dir)
    for folder in sorted((docs_dir / "validations").rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return docs_dir / "index.html"


def make_offline(docs_dir: Path) -> None:
    shutil.copytree(ASSETS, docs_dir / VENDOR, dirs_exist_ok=True)
    for page in docs_dir.rglob("*"):
        if page.suffix not in {".html", ".css"} or VENDOR in page.relative_to(docs_dir).as_posix():
            continue
        html = page.read_text(encoding="utf-8")
        offline = _offline(html, root="../" * (len(page.relative_to(docs_dir).parts) - 1))
        if offline != html:
            page.write_text(offline, encoding="utf-8")


def _offline(html: str, root: str) -> str:
    """``html`` with its external assets local (``root`` leads from the page to the site's root)."""
    html = _SITE_STATIC.sub(rf"\1=\2{root}static/", html)
    return _CSS_URL.sub(f"url('{root}{LOGO}')", _ASSET_TAG.sub(lambda m: _local(m, root), html))


def _local(match: re.Match[str], root: str) -> str:
    tag = match.group(0)
    if match.group("i"):  # the logo (GX also adds a tracking parameter to it)
        return tag.replace(match.group("i"), f'"{root}{LOGO}"')
    quoted = match.group("s") or match.group("l")
    copy = CDN_COPIES.get(quoted[1:-1])
    if copy is None:
        return ""  # Vega (charts our suites do not draw), the dark theme: dropped
    # integrity/crossorigin would make browsers refuse a file:// script
    return _SRI.sub("", tag.replace(quoted, f'"{root}{VENDOR}{copy}"'))
