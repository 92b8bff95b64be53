"""PennyLane backend: the circuit as a QNode on ``default.qubit``.

PennyLane is imported here only, when this backend (or :func:`qsgd_optax.draw`)
is used. The QNode uses ``interface="jax"``, so it runs inside ``jax.jit`` and
is batched over circuits with ``jax.vmap``.

A user circuit is any callable taking angles of shape ``(n_qubits,)`` (in
radians) and returning ``n_qubits`` expectation values (an array, or a
list/tuple of scalars as a QNode returns): typically a QNode built from
PennyLane templates.

References:
  Bergholm et al., `PennyLane: Automatic differentiation of hybrid
  quantum-classical computations <https://arxiv.org/abs/1811.04968>`_, 2018.
"""

import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from qsgd_optax.circuit import Gate, PerturbationCircuit

# PennyLane releases up to this one call names that jax 0.11 removed
# (jax.core.is_concrete among them): they cannot run with jax >= 0.11.
_LAST_BEFORE_JAX_0_11 = (0, 45)


def _release(version: str) -> tuple[int, ...]:
  parts = []
  for part in version.split(".")[:2]:
    digits = "".join(ch for ch in part if ch.isdigit())
    parts.append(int(digits or 0))
  return tuple(parts)


def check_installed() -> None:
  """Checks that PennyLane is installed and runs with the installed jax.

  Does not import PennyLane.

  Returns:
    None.

  Raises:
    ImportError: naming both versions, when PennyLane is missing or cannot
      run with the installed jax.

  Examples:
    >>> from qsgd_optax.backends.pennylane import check_installed
    >>> check_installed()
  """
  if importlib.util.find_spec("pennylane") is None:
    raise ImportError(
      f"PennyLane is not installed (jax {jax.__version__}): pip install 'qsgd-optax[pennylane]' "
      "(PennyLane <= 0.45 needs jax < 0.11). backend='statevector' and backend='pauli' give "
      "the same values."
    )
  pl, jx = importlib.metadata.version("pennylane"), jax.__version__
  if _release(jx) >= (0, 11) and _release(pl) <= _LAST_BEFORE_JAX_0_11:
    raise ImportError(
      f"PennyLane {pl} does not run with jax {jx} (it calls functions jax 0.11 removed). "
      "backend='statevector' and backend='pauli' give the same values; or install "
      "jax<0.11 for PennyLane."
    )


def apply_gates(gates: Sequence[Gate], angles: jax.Array) -> None:
  """Queues a gate list as PennyLane operations (inside a QNode).

  Args:
    gates: the circuit (``H``, ``RY``, ``RZ``, ``CNOT``).
    angles: rotations read ``angles[gate.param]`` (radians).

  Returns:
    None.

  Examples:
    >>> import jax.numpy as jnp
    >>> import pennylane as qml
    >>> from qsgd_optax.circuit import Gate
    >>> from qsgd_optax.backends.pennylane import apply_gates
    >>> gates = [Gate("H", (0,)), Gate("RY", (0,), 0), Gate("CNOT", (0, 1))]
    >>> with qml.queuing.AnnotatedQueue() as q:
    ...   apply_gates(gates, jnp.array([0.3]))
    >>> [op.name for op in q.queue]
    ['Hadamard', 'RY', 'CNOT']
  """
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  ops = {"H": qml.Hadamard, "RY": qml.RY, "RZ": qml.RZ, "CNOT": qml.CNOT}
  for gate in gates:
    if gate.param is None:
      ops[gate.name](wires=gate.wires)
    else:
      ops[gate.name](angles[gate.param], wires=gate.wires)


@functools.lru_cache(maxsize=64)
def qnode(circuit: PerturbationCircuit) -> Callable[[jax.Array], Any]:
  """A ``default.qubit`` QNode: angles ``(n_qubits,)`` -> tuple of ``<Z_i>``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import PerturbationCircuit
    >>> from qsgd_optax.backends.pennylane import qnode
    >>> q = qnode(PerturbationCircuit.build(2))
    >>> [round(float(z), 4) for z in q(jnp.array([jnp.pi / 2, 0.0]))]
    [-1.0, 0.0]
  """
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  n = circuit.n_qubits

  @qml.qnode(qml.device("default.qubit", wires=n), interface="jax")
  def run(angles: jax.Array) -> tuple[Any, ...]:
    apply_gates(circuit.gates(), angles)
    return tuple(qml.expval(qml.PauliZ(i)) for i in range(n))

  return run


def as_array_fn(fn: Callable[[jax.Array], Any]) -> Callable[[jax.Array], jax.Array]:
  """Wraps a circuit returning a list/tuple of expectations to stack them.

  Args:
    fn: a circuit, angles -> expectations (an array, or a list/tuple of
      scalars as a QNode returns).

  Returns:
    The circuit, returning one array.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.pennylane import as_array_fn
    >>> as_array_fn(lambda a: (a[0], 2 * a[1]))(jnp.array([1.0, 2.0]))
    Array([1., 4.], dtype=float32)
  """

  def run(angles: jax.Array) -> jax.Array:
    out = fn(angles)
    if isinstance(out, (list, tuple)):
      out = jnp.stack([jnp.asarray(o) for o in out])
    return jnp.asarray(out)

  return run


def batched(fn: Callable[[jax.Array], Any], n_qubits: int, t: jax.Array) -> jax.Array:
  """Runs ``fn`` (angles -> expectations) on each row of ``t`` (turns).

  Traced at full matmul precision: PennyLane's contractions would otherwise
  run in TF32 on NVIDIA GPUs (bfloat16 passes on TPUs).

  Args:
    fn: a circuit, angles ``(n_qubits,)`` in radians -> ``n_qubits``
      expectations (see :func:`as_array_fn`).
    n_qubits: number of qubits.
    t: angles in turns of shape ``(..., n_qubits)``, one circuit per row.

  Returns:
    The real part of the expectations, like ``t`` (shape and dtype).

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.pennylane import batched
    >>> t = jnp.array([[0.5, 0.25], [-0.5, -0.25]])
    >>> batched(lambda a: -jnp.sin(a), 2, t).round(4)
    Array([[-1.    , -0.7071],
           [ 1.    ,  0.7071]], dtype=float32)
  """
  flat = t.reshape(-1, n_qubits)
  with jax.default_matmul_precision("highest"):
    z = jax.vmap(as_array_fn(fn))(jnp.pi * flat)
  return jnp.real(z).reshape(t.shape).astype(t.dtype)


def expectations(circuit: PerturbationCircuit, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, from a PennyLane QNode.

  Args:
    circuit: the circuit.
    t: angles in turns of shape ``(..., n_qubits)``.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import PerturbationCircuit
    >>> from qsgd_optax.backends.pennylane import expectations
    >>> c = PerturbationCircuit.build(2, "chain", layers=2)
    >>> expectations(c, jnp.array([0.25, 0.5])).round(4)
    Array([-0.5   ,  0.3536], dtype=float32)
  """
  return batched(qnode(circuit), circuit.n_qubits, t)


__all__ = ["apply_gates", "as_array_fn", "batched", "check_installed", "expectations", "qnode"]
