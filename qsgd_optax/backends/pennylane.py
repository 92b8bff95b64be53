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

import contextlib
import functools
import importlib.metadata
import importlib.util
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from qsgd_optax._src.gates import Gate, Gates

# The one name PennyLane (0.43 to 0.45.1, the newest) reads that jax 0.11 removed:
# `qml.math.is_abstract` calls `jax.core.is_concrete(tracer)` on every jax tracer, so
# every QNode under `jax.jit`, `vmap` or `grad` fails with an AttributeError. The
# function itself lives on in `jax._src.core`. PennyLane's maintainers support only
# jax 0.7.1 and closed the report (PennyLaneAI/pennylane#9930, 2026-08), so the name is
# added back here, only when a PennyLane backend is built and only where it is missing:
# importing qsgd_optax never touches jax.
_REMOVED_FROM_JAX_CORE = "is_concrete"


def _restore_removed_jax_name() -> None:
  """Adds ``jax.core.is_concrete`` where this jax lacks it; never replaces a name."""
  with warnings.catch_warnings():  # jax 0.10 warns that it is deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    if hasattr(jax.core, _REMOVED_FROM_JAX_CORE):
      return
  from jax._src import core  # pylint: disable=import-outside-toplevel

  if hasattr(core, _REMOVED_FROM_JAX_CORE):
    setattr(jax.core, _REMOVED_FROM_JAX_CORE, getattr(core, _REMOVED_FROM_JAX_CORE))


@functools.lru_cache(maxsize=1)
def _runs_under_jit() -> None:
  """Imports PennyLane and runs a one-qubit QNode under ``jax.jit``, once per process."""
  _restore_removed_jax_name()
  try:
    import pennylane as qml  # pylint: disable=import-outside-toplevel

    @qml.qnode(qml.device("default.qubit", wires=1), interface="jax")
    def probe(angle: jax.Array) -> Any:
      qml.RY(angle, wires=0)
      return qml.expval(qml.PauliZ(0))

    with quiet_complex128():
      jax.block_until_ready(jax.jit(probe)(jnp.float32(0.5)))
  except Exception as e:
    pl, jx = importlib.metadata.version("pennylane"), jax.__version__
    raise ImportError(
      f"PennyLane {pl} does not run with jax {jx} under jax.jit ({type(e).__name__}: {e}). "
      "backend='statevector' and backend='pauli' give the same values."
    ) from e


def check_installed() -> None:
  """Checks that PennyLane is installed and runs with the installed jax.

  Imports PennyLane and, with jax 0.11 or newer, adds back the one name it
  reads that jax removed (``jax.core.is_concrete``, where missing), then runs
  a one-qubit QNode under ``jax.jit``; done once per process, when a PennyLane
  backend is built.

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
      f"PennyLane is not installed (jax {jax.__version__}): pip install 'qsgd-optax[pennylane]'. "
      "backend='statevector' and backend='pauli' give the same values."
    )
  _runs_under_jit()


@contextlib.contextmanager
def quiet_complex128() -> Iterator[None]:
  """Silences one warning, jax's ``complex128 ... not available`` while PennyLane runs.

  PennyLane's ``default.qubit`` casts rotation angles to Python's ``complex``
  (complex128) whatever their dtype (``_apply_rotation_1q`` in
  ``pennylane/devices/qubit/apply_operation.py``), so with jax's 64-bit types
  off (the default) jax warns at every trace and computes in complex64, as
  asked. No dtype passed in avoids it; only that warning is filtered.

  Returns:
    A context manager; PennyLane runs inside it.

  Examples:
    >>> import warnings
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.pennylane import quiet_complex128
    >>> with warnings.catch_warnings():
    ...   warnings.simplefilter("error")  # Any other warning would raise.
    ...   with quiet_complex128():
    ...     dtype = jnp.ones(2).astype(jnp.complex128).dtype
    >>> dtype
    dtype('complex64')
  """
  with warnings.catch_warnings():
    warnings.filterwarnings(  # jax 0.7 names the dtype "<class 'jax.numpy.complex128'>".
      "ignore", message=r"Explicitly requested dtype .*complex128.* requested in astype"
    )
    yield


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
    >>> from qsgd_optax import Gate
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
def qnode(circuit: Gates) -> Callable[[jax.Array], Any]:
  """A ``default.qubit`` QNode: angles ``(n_qubits,)`` -> tuple of ``<Z_i>``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pennylane import qnode
    >>> from qsgd_optax.backends.pennylane import quiet_complex128
    >>> q = qnode(Gates.build(2))
    >>> with quiet_complex128():  # As the backend runs it.
    ...   z = q(jnp.array([jnp.pi / 2, 0.0]))
    >>> [round(float(v), 4) for v in z]
    [-1.0, 0.0]
  """
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  n = circuit.n_qubits

  @qml.qnode(qml.device("default.qubit", wires=n), interface="jax")
  def run(angles: jax.Array) -> tuple[Any, ...]:
    apply_gates(circuit.sequence(), angles)
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
  with jax.default_matmul_precision("highest"), quiet_complex128():
    z = jax.vmap(as_array_fn(fn))(jnp.pi * flat)
  return jnp.real(z).reshape(t.shape).astype(t.dtype)


def expectations(circuit: Gates, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, from a PennyLane QNode.

  Args:
    circuit: the circuit.
    t: angles in turns of shape ``(..., n_qubits)``.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pennylane import expectations
    >>> c = Gates.build(2, "chain", layers=2)
    >>> expectations(c, jnp.array([0.25, 0.5])).round(4)
    Array([-0.5   ,  0.3536], dtype=float32)
  """
  return batched(qnode(circuit), circuit.n_qubits, t)


__all__ = [
  "apply_gates",
  "as_array_fn",
  "batched",
  "check_installed",
  "expectations",
  "qnode",
  "quiet_complex128",
]
