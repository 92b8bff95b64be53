"""Where 0.6's import paths went: importing one raises an error that names the new one.

0.7 keeps the implementation in ``qsgd_optax._src`` and lists what users call
in ``qsgd_optax`` (and ``qsgd_optax.backends``, ``qsgd_optax.grouping``,
``qsgd_optax.nn``). A finder at the end of ``sys.meta_path`` answers only for
the module names below, and only once no other finder has found them; every
other import is untouched.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any, NoReturn, Optional

_FLAT = "import it from qsgd_optax (for example qsgd_optax.{})"
MODULES = {
  "qsgd_optax.alias": _FLAT.format("qsgd"),
  "qsgd_optax.superpose": _FLAT.format("superpose"),
  "qsgd_optax.circuit": _FLAT.format("Gates") + "; PerturbationCircuit is now Gates",
  "qsgd_optax.modulation": _FLAT.format("Circuit"),
  "qsgd_optax.diagnostics": _FLAT.format("update_change"),
  "qsgd_optax.drawing": _FLAT.format("draw"),
  "qsgd_optax.nn.attention": "import it from qsgd_optax.nn",
  "qsgd_optax.nn.transformer": "import it from qsgd_optax.nn; TransformerClassifier is the "
  "study's (study/models.py in the repository)",
  "qsgd_optax.experiments": "the study left the package: it is the study/ folder of the "
  "repository, run from a clone (python -m study.demo)",
}
NAMES = {"PerturbationCircuit": "qsgd_optax.Gates (its gates() method is now sequence())"}


class MovedModuleError(ModuleNotFoundError):
  """An import of a module that 0.7 moved; the message names the new place."""


def _moved_from(fullname: str) -> Optional[str]:
  """The 0.6 module that ``fullname`` is or lies in, or ``None``."""
  return next((old for old in MODULES if fullname == old or fullname.startswith(old + ".")), None)


def _raise(fullname: str, old: str) -> NoReturn:
  raise MovedModuleError(f"{fullname} was removed in qsgd-optax 0.7: {MODULES[old]}.")


class _MovedFinder(importlib.abc.MetaPathFinder):
  def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
    old = _moved_from(fullname)
    if old is not None:
      _raise(fullname, old)
    return None


def install() -> None:
  """Appends the finder to ``sys.meta_path`` once."""
  if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())


def renamed_attribute(name: str) -> Any:
  """``qsgd_optax``'s module ``__getattr__``: a renamed name, or a moved module, raises with
  the new one."""
  if name in NAMES:
    raise AttributeError(f"qsgd_optax.{name} was renamed in 0.7: use {NAMES[name]}.")
  module = f"qsgd_optax.{name}"
  if module in MODULES:
    _raise(module, module)
  raise AttributeError(f"module 'qsgd_optax' has no attribute {name!r}")
