"""Argument checks shared by the transformations, run when they are built.

Each raises a ``TypeError`` or ``ValueError`` naming the argument and the
allowed values. Traced values (under ``optax.inject_hyperparams`` inside
``jit``) cannot be checked and pass through.
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


def static_int(value: Any, name: str, low: int = 1) -> Optional[int]:
  """``value`` as a Python int >= ``low``; ``None`` if it is a tracer.

  Tracers happen under ``optax.inject_hyperparams``, which turns every numeric
  argument into a traced array inside ``jit``; the circuit then comes from the
  state, recorded when ``init`` saw concrete values.
  """
  if is_traced(value):
    return None
  if (
    isinstance(value, (jax.Array, np.ndarray))
    and value.ndim == 0
    and jnp.issubdtype(value.dtype, jnp.integer)
  ):
    value = int(value)
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"{name} must be an int >= {low}, got {value!r}.")
  if value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value}.")
  return int(value)


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
    return jnp.asarray(value, jnp.uint32)
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
