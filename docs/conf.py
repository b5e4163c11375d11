"""Sphinx configuration: the Markdown pages in docs/ as a site.

The pages stay plain Markdown (MyST) so they read the same on the forge,
where their relative links work as they are.

Theme: pallets-sphinx-themes' ``flask`` theme, the one Flask's own
documentation uses, so a Flask developer lands in familiar surroundings
and the extension's pages look like the framework it extends (furo, used
by Flask-Login and Flask-Session, would do too; the Pallets theme also
renders the API reference the way Flask's API page does).
"""

from __future__ import annotations

import importlib.metadata

from sphinx.application import Sphinx

project = "Flask-Signoff"
copyright = "Flask-Signoff contributors"
author = "Flask-Signoff contributors"
release = importlib.metadata.version("flask-signoff")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_click",
    "sphinxcontrib.mermaid",
    "pallets_sphinx_themes",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# Colon fences let {eval-rst} and directive blocks sit in Markdown; anchors
# for the headings so `page.md#heading` links resolve as they do on the forge.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# ```mermaid blocks, as the forge draws them, are the mermaid directive here.
myst_fence_as_directive = ["mermaid"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}


html_theme = "flask"
html_title = f"Flask-Signoff ({version})"
html_context = {"project_links": []}


def _link_security_page(app: Sphinx, docname: str, source: list[str]) -> None:
    # On the forge the pages link the policy at the repository root
    # (../SECURITY.md), outside this source tree; here it is the page
    # security.md, which includes it. Rewritten in the build only, so the
    # Markdown files stay right for both readers.
    source[0] = source[0].replace("](../SECURITY.md)", "](security.md)")


def setup(app: Sphinx) -> None:
    app.connect("source-read", _link_security_page)
