"""Argument checks shared by the transformations, run when they are built.

Each raises a ``TypeError`` or ``ValueError`` naming the argument and the
allowed values. A float hyperparameter may be a schedule or, under
``optax.inject_hyperparams`` inside ``jit``, a tracer: neither can be checked
here and both pass through. The circuit's shape (``n_qubits``, ``layers``) must
be a Python int (:class:`~qsgd_optax.Circuit` checks it).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qsgd_optax.backends import pennylane


def is_traced(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer)


def static_int(value: Any, name: str, low: int = 1) -> int:
  """``value`` as a Python int >= ``low``.

  A jax array is refused, concrete or traced: a shape must not depend on a
  value that could be traced.
  """
  if isinstance(value, jax.Array):
    raise TypeError(f"{name} fixes the circuit's shape and must be a Python int, got a jax array.")
  if isinstance(value, np.ndarray) and value.ndim == 0:
    value = value.item()
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"{name} must be an int >= {low}, got {value!r}.")
  if value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value}.")
  return int(value)


def _concrete_float(value: Any, name: str, what: str) -> Optional[float]:
  """``value`` as a float, or ``None`` for a schedule or a tracer."""
  if callable(value) or is_traced(value):
    return None
  try:
    return float(value)
  except (TypeError, ValueError) as e:
    raise TypeError(f"{name} must be {what}, got {value!r}.") from e


def hyperparameter(
  value: Any, name: str, *, low: float = -math.inf, high: float = math.inf, below_high: bool = False
) -> None:
  """A finite float in ``[low, high]`` (``[low, high)`` with ``below_high``),
  or a schedule."""
  right = ")" if below_high else "]"
  span = f"a finite float in [{low:g}, {high:g}{right}"
  if math.isinf(low) and math.isinf(high):
    span = "a finite float"
  elif math.isinf(high):
    span = f"a finite float >= {low:g}"
  x = _concrete_float(value, name, span + " or a schedule")
  if x is None:
    return
  inside = math.isfinite(x) and low <= x and (x < high if below_high else x <= high)
  if not inside:
    raise ValueError(f"{name} must be {span}, got {value!r}.")


def adam(b1: Any, b2: Any, eps: Any, eps_root: Any) -> None:
  """Adam's hyperparameters: ``b1``, ``b2`` in [0, 1), ``eps``, ``eps_root`` >= 0."""
  hyperparameter(b1, "b1", low=0.0, high=1.0, below_high=True)
  hyperparameter(b2, "b2", low=0.0, high=1.0, below_high=True)
  hyperparameter(eps, "eps", low=0.0)
  hyperparameter(eps_root, "eps_root", low=0.0)


def weight(quantum_weight: Any, bound: Optional[float] = None) -> None:
  """A finite float (``|w| < bound`` if given) or a schedule."""
  if callable(quantum_weight) or is_traced(quantum_weight):
    return
  try:
    w = float(quantum_weight)
  except (TypeError, ValueError) as e:
    raise TypeError(
      "quantum_weight must be a finite float or a schedule (step -> float), "
      f"got {quantum_weight!r}."
    ) from e
  if not math.isfinite(w):
    raise ValueError(f"quantum_weight must be finite, got {quantum_weight!r}.")
  if bound is not None and not abs(w) < bound:
    raise ValueError(
      f"quantum_weight must lie in the open interval (-{bound:g}, {bound:g}) "
      f"here, got {quantum_weight!r}."
    )


def choice(value: Any, name: str, allowed: Sequence[Any]) -> None:
  if not isinstance(value, str) or value not in allowed:
    raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}.")


def key(value: Any) -> jax.Array:
  """The PRNG key as raw uint32 key data (a plain array, easy to save)."""
  if isinstance(value, (jax.Array, np.ndarray)) and (
    jnp.issubdtype(value.dtype, jax.dtypes.prng_key)
  ):
    return jax.random.key_data(value)
  if isinstance(value, (jax.Array, np.ndarray)) and value.shape == (2,):
    # A fresh array per state: donating one state must not delete another's key.
    return jnp.array(value, jnp.uint32, copy=True)
  if (
    is_traced(value)
    or (isinstance(value, numbers.Integral) and not isinstance(value, bool))
    or (isinstance(value, (jax.Array, np.ndarray)) and value.ndim == 0)
  ):
    return jax.random.PRNGKey(value)
  raise TypeError(f"key must be an int seed or a PRNG key, got {value!r}.")


def custom_circuit(circuit: Callable[..., Any], n_qubits: int) -> None:
  """Traces ``circuit`` once (abstractly) to check what it returns."""
  fn = pennylane.as_array_fn(circuit)
  try:
    with pennylane.quiet_complex128():
      out = jax.eval_shape(fn, jax.ShapeDtypeStruct((n_qubits,), jnp.float32))
  except Exception as e:
    raise ValueError(
      f"circuit must map angles of shape ({n_qubits},) to {n_qubits} "
      f"expectation values; calling it failed: {e}"
    ) from e
  if out.shape != (n_qubits,):
    raise ValueError(
      f"circuit must return {n_qubits} expectation values (one per qubit) "
      f"for angles of shape ({n_qubits},); it returned shape {out.shape}."
    )
