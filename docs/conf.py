"""Sphinx configuration for the qsgd-optax API documentation.

Build (warnings as errors, as CI does):

  python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import importlib
import os
import sys
from pathlib import Path

from sphinx.util import inspect as sphinx_inspect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # Document the checkout, installed or not.
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # No accelerator probing while importing.

project = "qsgd-optax"
author = "qsgd-optax contributors"
copyright = "qsgd-optax contributors"
release = importlib.import_module("qsgd_optax").__version__
version = ".".join(release.split(".")[:2])

extensions = [
  "sphinx.ext.autodoc",
  "sphinx.ext.napoleon",
  "sphinx.ext.viewcode",
  "sphinx.ext.mathjax",
  "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Google-style docstrings (Args:, Returns:, Examples:, References:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
# Show these aliases by name in signatures instead of expanding them into long unions.
autodoc_type_aliases = {
  "optax.ScalarOrSchedule": "optax.ScalarOrSchedule",
}
napoleon_attr_annotations = False  # Attributes: sections say what a field holds.

myst_heading_anchors = 3

# The theme of optax's and flax's docs: wide content, a page outline, search.
html_theme = "sphinx_book_theme"
html_title = f"qsgd-optax {release}"
html_theme_options = {
  "show_toc_level": 2,
  "show_navbar_depth": 1,
  "home_page_in_toc": True,
}
html_static_path = ["_static"]
html_css_files = ["wrap.css"]


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
  """NamedTuple fields are documented by their class's ``Attributes:`` section; autodoc's
  generated ``Alias for field number N`` entries would describe them twice."""
  del app, name, options
  if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
    return True
  return skip


def _drop_builtin_docstrings(app, what, name, obj, options, lines):
  """A constant (a tuple, a dict) has no docstring of its own: autodoc would show its type's."""
  del app, name, options
  if (
    what in ("data", "attribute") and "\n".join(lines).strip() == (type(obj).__doc__ or "").strip()
  ):
    lines.clear()


def _init_signature(app, what, name, obj, options, signature, return_annotation):
  """Flax NNX modules are built through a metaclass ``__call__(*args, **kwargs)``; show the
  arguments of their ``__init__`` instead."""
  del name, options
  if what != "class" or signature != "(*args: Any, **kwargs: Any)":
    return None
  init = getattr(obj, "__init__", None)
  if init is None or init is object.__init__:
    return None
  sig = sphinx_inspect.signature(
    init, bound_method=True, type_aliases=app.config.autodoc_type_aliases
  )
  return sphinx_inspect.stringify_signature(sig, show_return_annotation=False), return_annotation


def setup(app):
  app.connect("autodoc-skip-member", _skip_namedtuple_fields)
  app.connect("autodoc-process-docstring", _drop_builtin_docstrings)
  app.connect("autodoc-process-signature", _init_signature)
