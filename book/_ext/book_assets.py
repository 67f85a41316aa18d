"""Small fixes to the HTML that Jupyter Book 1.0.4 produces, so every page loads without a
JavaScript error (tests/test_book_html.py checks this in a browser).

* sphinx-thebe and sphinx-togglebutton register their inline configuration scripts twice in
  this stack (Jupyter Book 1.0.4, Sphinx 7.4; the book template shows it too), so every page
  declares ``const THEBE_JS_URL`` twice: "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has
  already been declared". Identical script entries are dropped here, keeping the first.
* pydata-sphinx-theme logs "Got invalid theme mode" on a first visit when no default colour
  mode is set (sphinx-book-theme has no option for it); "auto" is what it falls back to anyway.
* The book's own style sheet, ``book/_static/book.css`` (compact output tables that fit the column).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "_static"


def _key(script: Any) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    # an inline script is registered once with filename None and once with "": the same script
    filename = getattr(script, "filename", str(script)) or ""
    return (
        str(filename),
        tuple(sorted((k, str(v)) for k, v in attributes.items())),
    )


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def _add_static(app, config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("config-inited", _add_static)
    app.add_css_file("book.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
