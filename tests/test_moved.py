"""0.6's import paths raise an error that names where the names went; nothing else changes."""

import importlib
import re

import pytest

import qsgd_optax
from qsgd_optax._src import moved


@pytest.mark.parametrize("old", sorted(moved.MODULES))
def test_old_module_names_the_new_place(old):
  message = re.escape(f"{old} was removed in qsgd-optax 0.7: ")
  with pytest.raises(ModuleNotFoundError, match=message) as e:
    importlib.import_module(old)
  assert moved.MODULES[old] in str(e.value)


def test_from_import_of_an_old_module_names_the_new_place():
  with pytest.raises(ImportError, match=re.escape("qsgd_optax.update_change")):
    from qsgd_optax import diagnostics  # noqa: F401


def test_renamed_name_names_the_new_one():
  with pytest.raises(AttributeError, match=r"use qsgd_optax\.Gates .*sequence\(\)"):
    qsgd_optax.PerturbationCircuit  # noqa: B018


def test_other_names_fail_as_usual():
  with pytest.raises(ModuleNotFoundError) as e:
    importlib.import_module("qsgd_optax.no_such_module")
  assert not isinstance(e.value, moved.MovedModuleError)
  with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
    qsgd_optax.no_such_name  # noqa: B018
  # The names that moved still import where they are now.
  assert qsgd_optax.superpose is importlib.import_module("qsgd_optax._src.superpose").superpose
