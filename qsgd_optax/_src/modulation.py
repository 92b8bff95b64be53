"""The modulation ``m(theta)`` a :class:`~qsgd_optax.Circuit` gives.

:func:`modulation` computes ``m = -<Z>`` of the circuit at angles
``pi * theta`` for one leaf: reduce the angles, evaluate the backend over
groups of ``n_qubits`` (:mod:`qsgd_optax.grouping`) or elementwise, optionally
sample shots. :func:`modulations` does it once per step for a whole tree; the
placements then read it as their equations, with :func:`scale`
(``x * (1 + lambda * m)``) and :func:`term` (``lambda * m * g``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qsgd_optax._src.circuit import Circuit
from qsgd_optax._src.explicit_sharding import as_auto
from qsgd_optax._src.grouping import forced, forced_name, grouped
from qsgd_optax.backends import analytic


def is_modulated(g: Any, p: Any) -> bool:
  """Whether a (gradient, parameter) leaf pair gets a modulation.

  Both leaves must be present (not ``None``) and floating point, and ``g``
  non-empty.

  Args:
    g: a gradient (or update) leaf, or ``None``.
    p: the matching parameter leaf, or ``None``.

  Returns:
    ``True`` if the pair is modulated.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax._src.modulation import is_modulated
    >>> is_modulated(jnp.ones(3), jnp.ones(3))
    True
    >>> is_modulated(jnp.ones(3), jnp.arange(3))
    False
  """
  return (
    g is not None
    and p is not None
    and jnp.issubdtype(g.dtype, jnp.floating)
    and jnp.issubdtype(p.dtype, jnp.floating)
    and g.size > 0
  )


Equation = Callable[[jax.Array, jax.Array], jax.Array]


def _leading_index(shape: tuple[int, ...], n: int) -> Any:
  """Index of a leaf's first ``n`` entries (row-major)."""
  flat = np.arange(min(n, int(np.prod(shape, dtype=int))))
  return np.unravel_index(flat, shape) if shape else ()


def expectations(
  circuit: Circuit, theta: jax.Array, key: Optional[jax.Array], dtype: Optional[Any] = None
) -> jax.Array:
  """``<Z>`` of the circuit at angles ``pi * theta``, for every entry of ``theta``.

  Sampled with ``key`` when ``circuit.shots`` is set. Under
  ``coverage="leading"`` only the first ``n_qubits`` entries, flattened.

  Args:
    circuit: the :class:`Circuit`.
    theta: the parameter values, in turns; reduced here by
      :func:`~qsgd_optax.backends.analytic.reduce_turns`.
    key: PRNG key of the shots; needed only when ``circuit.shots`` is set.
    dtype: the dtype to compute in (float32 or wider); ``None``: ``theta``'s.

  Returns:
    An array like ``theta``, in ``dtype`` (1-D under ``coverage="leading"``).

  Raises:
    ValueError: if ``circuit.shots`` is set and ``key`` is ``None``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Circuit
    >>> from qsgd_optax import expectations
    >>> expectations(Circuit(), jnp.array([0.5, 0.25, 0.0]), None).round(4)
    Array([-1.    , -0.7071, -0.    ], dtype=float32)
  """
  backend, n = circuit.evaluation(), circuit.n_qubits
  prepare = lambda x: analytic.reduce_turns(x if dtype is None else x.astype(dtype))
  if circuit.coverage == "leading":
    z = grouped(backend, n, prepare(theta[_leading_index(theta.shape, n)].reshape(-1)))
  elif backend.elementwise:
    z = backend.expectations(prepare(theta))
  else:
    z = grouped(backend, n, theta, prepare)
  if circuit.shots is None:
    return z
  if key is None:
    raise ValueError("shots are sampled with a PRNG key: pass key.")
  return as_auto(functools.partial(_sampled, circuit.shots), z, key)


def _sampled(shots: int, z: jax.Array, key: jax.Array) -> jax.Array:
  """``<Z>`` estimated from ``shots`` measurements of each qubit, whose exact value is ``z``."""
  p_zero = jnp.clip((1 + z) / 2, 0, 1)
  k = jax.random.binomial(key, shots, p_zero, dtype=z.dtype)
  return 2 * k / shots - 1


def modulation(
  circuit: Circuit, theta: jax.Array, key: Optional[jax.Array], dtype: Optional[Any] = None
) -> jax.Array:
  """The modulation ``m = -<Z>`` for every entry of ``theta``.

  ``0`` outside the first ``n_qubits`` entries under ``coverage="leading"``.

  Args:
    circuit: the :class:`Circuit`.
    theta: the parameter values, in turns.
    key: PRNG key of the shots; needed only when ``circuit.shots`` is set.
    dtype: the dtype to compute in (float32 or wider); ``None``: ``theta``'s.

  Returns:
    An array like ``theta``, in ``dtype``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Circuit
    >>> from qsgd_optax import modulation
    >>> modulation(Circuit(n_qubits=2, coverage="leading"), jnp.full((2, 3), 0.5), None).tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
  """
  if circuit.coverage != "leading":
    return -expectations(circuit, theta, key, dtype)
  return as_auto(functools.partial(_leading_modulation, circuit, dtype=dtype), theta, key)


def _leading_modulation(
  circuit: Circuit, theta: jax.Array, key: Optional[jax.Array], dtype: Optional[Any]
) -> jax.Array:
  m = -expectations(circuit, theta, key, dtype)
  index = _leading_index(theta.shape, circuit.n_qubits)
  return jnp.zeros(theta.shape, m.dtype).at[index].set(m.reshape(theta[index].shape))


@functools.partial(jax.jit, static_argnums=(0, 3, 4), inline=True)
def _modulation_once(
  circuit: Circuit,
  theta: jax.Array,
  key: Optional[jax.Array],
  dtype: Any,
  formulation: Optional[str],
) -> jax.Array:
  """:func:`modulation`, traced once per leaf shape, dtype and sharding and
  inlined where each leaf reads it (a model's layers share their shapes: a
  GPT-2 small's 148 leaves have 9). The forced formulation is a static argument,
  since a trace is reused wherever these match."""
  with forced(formulation):
    return modulation(circuit, theta, key, dtype)


def modulations(
  circuit: Circuit, updates: optax.Updates, params: optax.Params, key: Optional[jax.Array]
) -> Any:
  """``m(theta)`` of every parameter leaf that :func:`is_modulated`, ``None`` elsewhere.

  Shaped like ``updates``; computed in at least float32 (the wider of each
  update's and parameter's dtypes). Leaf ``i`` samples its shots with
  ``fold_in(key, i)``.

  Args:
    circuit: the :class:`Circuit`.
    updates: the gradients (or updates); their tree and dtypes.
    params: the parameters, a tree like ``updates``.
    key: PRNG key of this step's shots; needed only when ``circuit.shots`` is set.

  Returns:
    A tree like ``updates`` of modulations and ``None``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Circuit
    >>> from qsgd_optax._src.modulation import modulations
    >>> params = {"w": jnp.array([0.5, 0.25]), "i": jnp.arange(2)}
    >>> modulations(Circuit(), params, params, None)
    {'i': None, 'w': Array([1.       , 0.7071068], dtype=float32)}
  """
  leaves_g, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
  leaves_p = treedef.flatten_up_to(params)  # type: ignore[attr-defined]
  ms: list[Optional[jax.Array]] = []
  for i, (g, p) in enumerate(zip(leaves_g, leaves_p)):
    if not is_modulated(g, p):
      ms.append(None)
      continue
    cdtype = jnp.promote_types(jnp.promote_types(g.dtype, p.dtype), jnp.float32)
    leaf_key = None if key is None else jax.random.fold_in(key, i)
    theta = jnp.asarray(p)  # As stored: cast to cdtype where it is read (grouping.py).
    dtype = jax.dtypes.canonicalize_dtype(cdtype)
    ms.append(_modulation_once(circuit, theta, leaf_key, dtype, forced_name()))
  return jax.tree.unflatten(treedef, ms)


def _combine(equation: Equation, x: Any, weight: Any, m: jax.Array) -> Any:
  """``equation(x, weight * m)`` in ``m``'s dtype, returned in ``x``'s.

  A finite result stays finite (clipped to the dtype's largest value); an
  infinite ``x`` stays infinite, so ``optax.apply_if_finite`` still sees it.
  """
  out_dtype = jax.dtypes.canonicalize_dtype(x.dtype)  # As jax stores it (x64 off: f64 -> f32).
  xc = jnp.asarray(x, m.dtype)
  out = equation(xc, jnp.asarray(weight, m.dtype) * m)
  big = jnp.finfo(out_dtype).max
  out = jnp.where(jnp.isinf(xc), out, jnp.clip(out, -big, big))
  return out.astype(out_dtype)


def _leafwise(fn: Callable[[Any, Any], Any], tree: Any, ms: Any) -> Any:
  return jax.tree.map(fn, tree, ms, is_leaf=lambda x: x is None)


def scale(tree: Any, weight: Any, ms: Any) -> Any:
  """``x * (1 + weight * m)`` leaf by leaf; leaves without a modulation unchanged.

  Args:
    tree: gradients, or Adam's direction.
    weight: the modulation's weight ``lambda``.
    ms: the modulations, as :func:`modulations` returns them.

  Returns:
    A tree like ``tree``, in its dtypes.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Circuit
    >>> from qsgd_optax._src.modulation import modulations, scale
    >>> p = jnp.array([0.5, 0.25, 0.0])
    >>> scale(jnp.ones(3), 0.5, modulations(Circuit(), p, p, None)).round(4)
    Array([1.5   , 1.3536, 1.    ], dtype=float32)
  """
  equation = lambda x, lam_m: x * (1 + lam_m)
  return _leafwise(lambda x, m: x if m is None else _combine(equation, x, weight, m), tree, ms)


def term(tree: Any, weight: Any, ms: Any) -> Any:
  """``weight * m * g`` leaf by leaf; zero (or ``None``) where there is no modulation.

  Args:
    tree: the gradients.
    weight: the modulation's weight ``lambda``.
    ms: the modulations, as :func:`modulations` returns them.

  Returns:
    A tree like ``tree``, in its dtypes.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Circuit
    >>> from qsgd_optax._src.modulation import modulations, term
    >>> p = jnp.array([0.5, 0.25, 0.0])
    >>> term(jnp.ones(3), 0.5, modulations(Circuit(), p, p, None)).round(4)
    Array([0.5   , 0.3536, 0.    ], dtype=float32)
  """
  equation = lambda g, lam_m: g * lam_m
  unmodulated = lambda g: g if g is None else jnp.zeros_like(g)
  return _leafwise(
    lambda g, m: unmodulated(g) if m is None else _combine(equation, g, weight, m), tree, ms
  )


__all__ = [
  "expectations",
  "is_modulated",
  "modulation",
  "modulations",
  "scale",
  "term",
]
