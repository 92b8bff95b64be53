"""PennyLane with every jax the package supports: the one name restored, only
when a PennyLane backend is built; a clear error where it still cannot run; no
warning from the package's own use of PennyLane."""

import importlib.metadata
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import optax
import pytest
from optional import pennylane_or_skip

import qsgd_optax
from qsgd_optax import Gates
from qsgd_optax.backends import pennylane as pennylane_backend
from qsgd_optax.backends import select


def test_import_and_other_backends_leave_jax_untouched():
  code = (
    "import warnings; warnings.simplefilter('ignore', DeprecationWarning)\n"
    "import jax, jax.numpy as jnp\n"
    "before = dict(vars(jax.core))\n"
    "import qsgd_optax\n"
    "tx = qsgd_optax.qsgd(1e-2, circuit=qsgd_optax.Circuit(entanglement='chain', layers=2))\n"
    "p = {'w': jnp.ones(5)}; tx.update(p, tx.init(p), p)\n"
    "assert dict(vars(jax.core)) == before, set(vars(jax.core)) ^ set(before)\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_name_is_added(monkeypatch):
  from jax._src import core

  def no_such_name(name):  # Where jax keeps removed names behind a module __getattr__.
    raise AttributeError(name)

  monkeypatch.delitem(vars(jax.core), "is_concrete", raising=False)
  monkeypatch.setattr(jax.core, "__getattr__", no_such_name, raising=False)
  assert not hasattr(jax.core, "is_concrete")
  pennylane_backend._restore_removed_jax_name()
  assert vars(jax.core)["is_concrete"] is core.is_concrete


def test_an_existing_name_is_never_replaced(monkeypatch):
  own = lambda x: True
  monkeypatch.setattr(jax.core, "is_concrete", own, raising=False)
  pennylane_backend._restore_removed_jax_name()
  assert jax.core.is_concrete is own


@pytest.fixture
def fresh_probe():
  """PennyLane probed again in the test (once per process otherwise), and after it."""
  pennylane_backend._runs_under_jit.cache_clear()
  yield
  pennylane_backend._runs_under_jit.cache_clear()


def test_a_pennylane_that_cannot_run_names_both_versions(monkeypatch, fresh_probe):
  """As when a later jax removes another name PennyLane reads: its QNodes fail under jit,
  and building the backend says so, with both versions."""
  pennylane_or_skip()
  import pennylane as qml

  def qnode_of_a_later_jax(device, interface):
    def build(fn):
      def run(*args):
        raise AttributeError("module 'jax.core' has no attribute 'a_removed_name'")

      return run

    return build

  monkeypatch.setattr(qml, "qnode", qnode_of_a_later_jax)
  pl = importlib.metadata.version("pennylane")
  pennylane_backend._runs_under_jit.cache_clear()  # Probed again, with the name gone.
  with pytest.raises(ImportError, match=rf"PennyLane {pl} does not run with jax {jax.__version__}"):
    select(Gates.build(2), "pennylane")


def custom_qnode():
  import pennylane as qml

  @qml.qnode(qml.device("default.qubit", wires=3), interface="jax")
  def circuit(angles):
    qml.AngleEmbedding(angles, wires=range(3), rotation="Y")
    qml.CNOT(wires=[0, 1])
    qml.RZ(angles[2], wires=2)
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]

  return circuit


def test_no_warning_from_quantum_attention_on_pennylane():
  pennylane_or_skip()
  from qsgd_optax._src.attention import ScoreCircuit

  circuit = ScoreCircuit.build(n_qubits=2, depth=1, backend="pennylane")
  theta = phi = jnp.full((1, 2), 0.3)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    jax.jit(jax.grad(lambda s: jnp.sum(circuit.bias(s, theta, phi))))(jnp.ones((1, 2, 3)))


@pytest.mark.parametrize("which", ["built-in", "custom"])
def test_no_warning_from_the_package_use_of_pennylane(which, fresh_probe):
  pennylane_or_skip()
  if which == "custom":
    circuit = qsgd_optax.Circuit(n_qubits=3, custom=custom_qnode())
  else:
    circuit = qsgd_optax.Circuit(n_qubits=2, entanglement="chain", layers=2, backend="pennylane")
  params = {"w": jnp.linspace(-1.0, 1.0, 7), "b": jnp.float32(0.25)}
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    tx = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, circuit=circuit)
    state = tx.init(params)
    for update in (tx.update, jax.jit(tx.update)):
      updates, _ = update(params, state, params)
      optax.apply_updates(params, updates)
