"""Old module names, kept importable with a ``DeprecationWarning``.

Version 0.1 had one flat package; the modules moved into ``backends/``,
``nn/`` and ``experiments/``. ``import qsgd_optax.analytic`` (and
``from qsgd_optax import analytic``) still work and return the moved module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Optional

MOVED = {
  "analytic": "qsgd_optax.backends.analytic",
  "statevector": "qsgd_optax.backends.statevector",
  "pennylane_backend": "qsgd_optax.backends.pennylane",
  "attention": "qsgd_optax.nn.attention",
  "transformer": "qsgd_optax.nn.transformer",
  "tasks": "qsgd_optax.experiments.tasks",
}


def load(old: str) -> ModuleType:
  """The module that ``qsgd_optax.<old>`` became, with a warning."""
  new = MOVED[old]
  warnings.warn(
    f"qsgd_optax.{old} moved to {new}; the old name will be removed.",
    DeprecationWarning,
    stacklevel=3,
  )
  return importlib.import_module(new)


class _Loader(importlib.abc.Loader):
  """Hands back the moved module, keeping its own ``__spec__``."""

  def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
    module = load(spec.name.rpartition(".")[2])
    self._spec = module.__spec__
    return module

  def exec_module(self, module: ModuleType) -> None:
    module.__spec__ = self._spec  # The import system overwrote it.


class Finder(importlib.abc.MetaPathFinder):
  """Resolves ``import qsgd_optax.<old>`` to the moved module."""

  def find_spec(
    self, fullname: str, path: object = None, target: object = None
  ) -> Optional[importlib.machinery.ModuleSpec]:
    prefix, _, name = fullname.rpartition(".")
    if prefix != "qsgd_optax" or name not in MOVED:
      return None
    return importlib.machinery.ModuleSpec(fullname, _Loader())


def install() -> None:
  if not any(isinstance(f, Finder) for f in sys.meta_path):
    sys.meta_path.append(Finder())
