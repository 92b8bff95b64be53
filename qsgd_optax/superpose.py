"""The ``superpose`` gradient transformation."""

from __future__ import annotations

import importlib.util
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qsgd_optax import analytic, pennylane_backend, statevector
from qsgd_optax.circuit import Entanglement, PerturbationCircuit

BACKENDS = ("auto", "analytic", "statevector", "pennylane")
COVERAGES = ("all", "leading")


class SuperposeState(NamedTuple):
  """State of :func:`superpose`.

  Attributes:
    count: number of updates so far (int32), for ``quantum_weight`` schedules.
    key: raw ``uint32`` PRNG key, split every step when ``shots`` is set.
    circuit: the circuit the state was built for (static: no array leaves).
  """

  count: jax.Array
  key: jax.Array
  circuit: PerturbationCircuit


def _is_traced(x) -> bool:
  return isinstance(x, jax.core.Tracer)


def _static_int(value, name: str, low: int = 1) -> Optional[int]:
  """``value`` as a Python int >= ``low``; ``None`` if it is a tracer.

  Tracers happen under ``optax.inject_hyperparams``, which turns every numeric
  argument into a traced array inside ``jit``; the circuit then comes from the
  state, recorded when ``init`` saw concrete values.
  """
  if _is_traced(value):
    return None
  if isinstance(value, (jax.Array, np.ndarray)) and value.ndim == 0:
    if jnp.issubdtype(value.dtype, jnp.integer):
      value = int(value)
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"{name} must be an int >= {low}, got {value!r}.")
  if value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value}.")
  return int(value)


def _check_weight(quantum_weight) -> None:
  if callable(quantum_weight) or _is_traced(quantum_weight):
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


def _check_choice(value, name: str, allowed) -> None:
  if not isinstance(value, str) or value not in allowed:
    raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")


def _check_key(key) -> jax.Array:
  """The PRNG key as raw uint32 key data (a plain array, easy to save)."""
  if isinstance(key, (jax.Array, np.ndarray)) and (
      jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  ):
    return jax.random.key_data(key)
  if isinstance(key, (jax.Array, np.ndarray)) and key.shape == (2,):
    return jnp.asarray(key, jnp.uint32)
  if _is_traced(key) or (
      isinstance(key, numbers.Integral) and not isinstance(key, bool)
  ) or (isinstance(key, (jax.Array, np.ndarray)) and key.ndim == 0):
    return jax.random.PRNGKey(key)
  raise TypeError(f"key must be an int seed or a PRNG key, got {key!r}.")


def _check_custom_circuit(circuit: Callable, n_qubits: int) -> None:
  """Traces ``circuit`` once (abstractly) to check what it returns."""
  fn = pennylane_backend.as_array_fn(circuit)
  try:
    out = jax.eval_shape(fn, jax.ShapeDtypeStruct((n_qubits,), jnp.float32))
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(
        f"circuit must map angles of shape ({n_qubits},) to {n_qubits} "
        f"expectation values; calling it failed: {e}"
    ) from e
  if out.shape != (n_qubits,):
    raise ValueError(
        f"circuit must return {n_qubits} expectation values (one per qubit) "
        f"for angles of shape ({n_qubits},); it returned shape {out.shape}."
    )


def _make_backend(
    circuit: PerturbationCircuit, backend: str, custom: Optional[Callable]
) -> tuple[Callable[[jax.Array], jax.Array], bool]:
  """The expectation function ``t -> <Z>`` and whether it is elementwise."""
  n = circuit.n_qubits
  if custom is not None:
    return (lambda t: pennylane_backend.batched(custom, n, t)), False
  if backend == "auto":
    backend = "analytic" if circuit.has_closed_form else "statevector"
  if backend == "analytic":
    if not circuit.has_closed_form:
      raise ValueError(
          "backend='analytic' has a closed form only for layers=1 or "
          f"entanglement=None; got layers={circuit.layers} with CNOTs "
          f"{circuit.cnots}. Use backend='statevector' (or 'auto')."
      )
    return (lambda t: analytic.expectations(circuit, t)), circuit.is_product
  statevector.check_qubits(n)
  if backend == "statevector":
    return (lambda t: statevector.expectations(circuit, t)), False
  if importlib.util.find_spec("pennylane") is None:
    raise ImportError(
        "backend='pennylane' needs PennyLane: pip install 'qsgd-optax[pennylane]'."
    )
  return (lambda t: pennylane_backend.expectations(circuit, t)), False


def _grouped(fn: Callable, n: int, t: jax.Array) -> jax.Array:
  """Applies ``fn`` to consecutive groups of ``n`` along the last axis.

  The last axis is padded (with angle 0) to a multiple of ``n``; the padded
  outputs are dropped. Only the last axis is reshaped, so sharded leading
  axes keep their sharding.
  """
  shape = t.shape
  t = t.reshape(1) if t.ndim == 0 else t
  length = t.shape[-1]
  groups = -(-length // n)
  pad = groups * n - length
  if pad:
    t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)])
  z = fn(t.reshape(t.shape[:-1] + (groups, n)))
  z = z.reshape(t.shape[:-1] + (groups * n,))
  return (z[..., :length] if pad else z).reshape(shape)


def _build(
    quantum_weight: optax.ScalarOrSchedule,
    n_qubits: int,
    entanglement: Entanglement,
    layers: int,
    coverage: str,
    backend: str,
    shots: Optional[int],
    key: Union[int, jax.Array],
    circuit: Optional[Callable],
    term_only: bool,
) -> optax.GradientTransformationExtraArgs:
  """Shared by :func:`superpose` (``g + term``) and ``qsgd``'s literal rule."""
  _check_weight(quantum_weight)
  _check_choice(backend, "backend", BACKENDS)
  _check_choice(coverage, "coverage", COVERAGES)
  if circuit is not None:
    if not callable(circuit):
      raise TypeError(f"circuit must be callable, got {circuit!r}.")
    if backend not in ("auto", "pennylane"):
      raise ValueError(
          f"A custom circuit runs as given; backend must be 'auto' or "
          f"'pennylane', got {backend!r}."
      )
    if entanglement is not None or (not _is_traced(layers) and layers != 1):
      raise ValueError(
          "entanglement and layers describe the built-in circuit; with a "
          "custom circuit leave them at None and 1."
      )
  if shots is not None and not _is_traced(shots):
    _static_int(shots, "shots")
  n = _static_int(n_qubits, "n_qubits")
  n_layers = _static_int(layers, "layers")
  fixed = None
  if n is not None and n_layers is not None:
    fixed = PerturbationCircuit.build(n, entanglement, n_layers)
    _make_backend(fixed, backend, circuit)  # Fail now, not inside jit.
    if circuit is not None:
      _check_custom_circuit(circuit, n)
  key_data = None if _is_traced(key) else _check_key(key)

  def init_fn(params):
    del params
    if fixed is None:
      raise ValueError(
          "n_qubits and layers fix the circuit's shape and must be concrete "
          "when init runs. Under optax.inject_hyperparams, call init outside "
          "jax.jit, or pass static_args=('n_qubits', 'layers')."
      )
    k = key_data if key_data is not None else _check_key(key)
    return SuperposeState(jnp.zeros([], jnp.int32), k, fixed)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(
          "superpose modulates the gradient by the parameters' values: "
          "params are required, call update(updates, state, params)."
      )
    if fixed is not None and fixed != state.circuit:
      raise ValueError(
          f"This state was built for {state.circuit}, not {fixed}: the "
          "circuit's shape cannot change after init."
      )
    circ = state.circuit
    expval, elementwise = _make_backend(circ, backend, circuit)
    weight = (
        quantum_weight(state.count)
        if callable(quantum_weight)
        else quantum_weight
    )
    if shots is None:
      new_key, step_key = state.key, None
    else:
      new_key, step_key = jax.random.split(state.key)

    def modulate(i, g, p):
      if (
          g is None
          or p is None
          or not jnp.issubdtype(g.dtype, jnp.floating)
          or not jnp.issubdtype(p.dtype, jnp.floating)
          or g.size == 0
      ):
        return g
      cdtype = jnp.promote_types(
          jnp.promote_types(g.dtype, p.dtype), jnp.float32
      )
      t = analytic.reduce_turns(p.astype(cdtype))
      if coverage == "leading":
        flat_index = np.arange(min(circ.n_qubits, t.size))
        index = np.unravel_index(flat_index, t.shape) if t.ndim else ()
        head = t[index].reshape(-1)
        z = _grouped(expval, circ.n_qubits, head)
      elif elementwise:
        z = expval(t)
      else:
        z = _grouped(expval, circ.n_qubits, t)
      if shots is not None:
        p_zero = jnp.clip((1 + z) / 2, 0, 1)
        leaf_key = jax.random.fold_in(step_key, i)
        k = jax.random.binomial(leaf_key, shots, p_zero, dtype=cdtype)
        z = 2 * k / shots - 1
      lam = jnp.asarray(weight, cdtype)
      big = jnp.finfo(g.dtype).max
      gc = g.astype(cdtype)
      if coverage == "leading":
        head_g = gc[index].reshape(-1)
        new = head_g * (lam * -z) if term_only else head_g * (1 - lam * z)
        base = jnp.zeros_like(gc) if term_only else gc
        out = base.at[index].set(new.reshape(gc[index].shape))
      else:
        out = gc * (lam * -z) if term_only else gc * (1 - lam * z)
      # Finite in, finite out; an inf gradient stays inf (apply_if_finite).
      out = jnp.where(jnp.isinf(gc), out, jnp.clip(out, -big, big))
      return out.astype(g.dtype)

    leaves_g, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
    leaves_p = treedef.flatten_up_to(params)
    new_leaves = [
        modulate(i, g, p) for i, (g, p) in enumerate(zip(leaves_g, leaves_p))
    ]
    new_updates = jax.tree.unflatten(treedef, new_leaves)
    count = optax.safe_increment(state.count)
    return new_updates, SuperposeState(count, new_key, circ)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def superpose(
    quantum_weight: optax.ScalarOrSchedule = 0.5,
    n_qubits: int = 4,
    *,
    entanglement: Entanglement = None,
    layers: int = 1,
    coverage: str = "all",
    backend: str = "auto",
    shots: Optional[int] = None,
    key: Union[int, jax.Array] = 0,
    circuit: Optional[Callable[[jax.Array], Any]] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Perturbs gradients by a simulated quantum circuit (SGD's perturbation).

  For every floating leaf returns ``g + quantum_weight * m(theta) * g``, where
  ``m = -<Z>`` of a small circuit evaluated at angles ``pi * theta`` of the
  matching parameters. The circuit: a Hadamard on every qubit, then
  ``layers`` times ``RY(phi_i) RZ(phi_i)`` on each qubit and the entangling
  CNOTs. With ``entanglement=None`` the modulation is exactly
  ``sin(pi * theta)``, the paper's written rule
  :math:`Q(\theta, g)_i = \sin(\pi\theta_i)\, g_i`; with CNOTs it becomes a
  product of sines over each qubit's parity set (see
  :meth:`PerturbationCircuit.parity_sets`).

  Non-float leaves (ints, bools, complex), ``None`` and masked leaves pass
  through untouched; updates keep their dtype (bf16/f16 are computed in
  float32). Non-finite parameters contribute a zero modulation, and a finite
  update stays finite (it is clipped to the dtype's largest finite value).

  Args:
    quantum_weight: ``lambda``, a float or a schedule of the step count.
    n_qubits: qubits per circuit, i.e. parameters per group.
    entanglement: ``None``, ``"chain"`` (CNOT i->i+1), ``"ring"`` (chain plus
      n-1->0), or a sequence of ``(control, target)`` pairs.
    layers: number of rotation+entangling layers.
    coverage: ``"all"`` splits each leaf's last axis into consecutive groups
      of ``n_qubits`` (the tail padded with angle 0; pads never leak out), one
      circuit per group; ``"leading"`` modulates only the first ``n_qubits``
      entries of each leaf, as the paper's formula states.
    backend: ``"analytic"`` (closed form: ``layers=1`` or no entanglement),
      ``"statevector"`` (dense ``jnp`` simulation), ``"pennylane"``
      (``default.qubit`` QNode), or ``"auto"`` (analytic where possible, else
      statevector).
    shots: ``None`` for exact expectations, or a number of measurement shots:
      each qubit's ``<Z>`` is then estimated from a binomial sample of its
      outcome probability, with a key carried in the state.
    key: seed or PRNG key for ``shots``.
    circuit: optional user circuit (e.g. a PennyLane QNode with
      ``interface="jax"``), angles ``(n_qubits,)`` in radians ->
      ``n_qubits`` expectation values; ``m = -circuit(pi * theta)``.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import qsgd_optax
    >>> tx = optax.chain(qsgd_optax.superpose(0.5), optax.adamw(1e-2))
    >>> params = {"w": jnp.array([0.25, -1.5, 2.0])}
    >>> state = tx.init(params)
    >>> grads = {"w": jnp.ones(3)}
    >>> s = qsgd_optax.superpose(0.5)
    >>> s.update(grads, s.init(params), params)[0]["w"]
    Array([1.3535534, 1.5      , 1.       ], dtype=float32)

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """
  return _build(
      quantum_weight, n_qubits, entanglement, layers, coverage, backend,
      shots, key, circuit, term_only=False,
  )
