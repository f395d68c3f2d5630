"""Sphinx configuration for the iris-jupyterhub documentation."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("JUPYTERHUB_CRYPT_KEY", "0" * 64)

project = "iris-jupyterhub"
copyright = "2026, iris-jupyterhub developers"
author = "iris-jupyterhub developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "autodoc_traits",
    # provides the `:external:` role used in upstream (oauthenticator) trait help texts;
    # no inventories are fetched (the build must work offline)
    "sphinx.ext.intersphinx",
]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = "iris-jupyterhub"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
# Traits inherited from JupyterHub / oauthenticator are documented upstream; their
# docstrings use cross-reference roles that only resolve in those projects' docs.
suppress_warnings = ["ref.ref", "ref.class", "ref.python", "docutils", "autodoc"]
nitpicky = False
