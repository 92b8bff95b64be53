"""Quantum attention: attention logits biased by a small circuit (Flax NNX).

The paper's Quantum Transformer adds to every attention logit the output of
a circuit fed with that score:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + Phi(Q, K, C)) V,
    Phi_{ijh} = sum_{k=1..n_qubits} psi_k(C(s_{ijh})),

with ``C(x) = U_entangle prod_i RZ(phi_i) RY(theta_i) H_i |0>^n`` (4 qubits,
"depth 2", learned angles). The paper leaves open how the score enters, what
``psi_k`` is and what "depth 2" means. Our reading, each a documented choice:

* the score ``s`` is the scaled logit ``(Q K^T)_{ijh} / sqrt(d_k)``, added to
  every RY angle (``RY(theta_{l,i} + s)``; the data is re-uploaded in every
  layer);
* "depth 2" is two layers of ``RY RZ`` rotations each followed by the CNOTs
  (``entanglement``, default ``"chain"``: adjacent qubits);
* ``psi_k`` is real: ``readout="expval"`` (default) uses ``<Z_k>``,
  ``readout="probs"`` the probabilities of the first ``n_qubits`` basis
  states (the literal "amplitudes", squared to be real);
* ``theta`` and ``phi`` are ``nnx.Param`` of shape ``(depth, n_qubits)``,
  shared by all heads, trained with the rest of the model.

Closed form (``backend="analytic"``, the default): the score enters the
circuit only through the ``K = depth * n_qubits`` gates ``RY(theta + s)``, each
contributing ``exp(+-i s / 2)`` to the amplitudes, so any real readout is a
trigonometric polynomial of degree ``K`` in ``s``:

    Phi(s) = F_0 + sum_{k=1..K} 2 Re(F_k exp(i k s)).

Its ``2K + 1`` Fourier coefficients ``F_k`` are exactly the DFT of ``Phi`` at
``2K + 1`` equispaced scores, so each forward pass simulates just ``2K + 1``
circuits (differentiably, on the statevector simulator) and evaluates the
series on every score with one ``sin``/``cos`` pair and a recurrence. The
``"statevector"`` backend simulates one circuit per score instead, and
``"pennylane"`` does the same with a QNode (a reference).

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025, Section III-B.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Literal, Optional, get_args

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from qsgd_optax._src.gates import Entanglement, Gate, entangling_pairs, layered_gates
from qsgd_optax.backends import analytic, pennylane, statevector

Readout = Literal["expval", "probs"]
READOUTS: tuple[Readout, ...] = get_args(Readout)
# How ScoreCircuit evaluates Phi: not qsgd_optax.backends.BACKENDS (here
# "analytic" is the Fourier series; see ScoreCircuit).
ScoreBackend = Literal["auto", "analytic", "statevector", "pennylane"]
SCORE_BACKENDS: tuple[ScoreBackend, ...] = get_args(ScoreBackend)
# The circuit's own float contractions (the readout) run at full float32
# precision, whatever the default matmul precision (TF32 on recent GPUs).
_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class ScoreCircuit:
  """The circuit ``C(s)`` applied to each attention score.

  Angles are laid out as ``[theta (depth*n) + s, phi (depth*n)]``.

  ``backend`` (one of :data:`SCORE_BACKENDS`) says how ``Phi`` is evaluated:

  * ``"analytic"``: the Fourier series of the module docstring, from
    ``2 * degree + 1`` simulated circuits per call (not the optimizer's
    analytic backend of :mod:`qsgd_optax.backends`, which has no score);
  * ``"auto"``: the same as ``"analytic"`` (the default);
  * ``"statevector"``: one circuit per score on the dense simulator;
  * ``"pennylane"``: one circuit per score as a PennyLane QNode (a reference;
    needs ``pennylane``).

  The circuit's own float contractions ask for
  ``jax.lax.Precision.HIGHEST``, so a TF32 default matmul precision does not
  round its readout; the model's matmuls keep the precision in effect.
  :meth:`build` checks its arguments and turns an entangling pattern into
  ``cnots``.

  Attributes:
    n_qubits: number of qubits ``n``.
    depth: number of layers of ``RY RZ`` rotations, each followed by the CNOTs.
    cnots: the ``(control, target)`` pairs of every layer's CNOTs, in circuit
      order (``build``'s default ``entanglement="chain"`` on 4 qubits).
    readout: ``"expval"`` (the sum of ``<Z_k>``) or ``"probs"`` (the sum of
      the probabilities of the first ``n_qubits`` basis states); see
      :data:`READOUTS`.
    backend: how ``Phi`` is evaluated, one of :data:`SCORE_BACKENDS` (above).

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.nn import ScoreCircuit
    >>> c = ScoreCircuit.build(n_qubits=2, depth=1, entanglement="chain")
    >>> theta, phi = jnp.zeros((1, 2)), jnp.zeros((1, 2))
    >>> # <Z_0> + <Z_1> = -sin(s) + sin(s)^2
    >>> c.bias(jnp.array([0.0, jnp.pi / 2, 1.0]), theta, phi).round(4)
    Array([ 0.    ,  0.    , -0.1334], dtype=float32)
  """

  n_qubits: int = 4
  depth: int = 2
  cnots: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 3))
  readout: Readout = "expval"
  backend: ScoreBackend = "auto"

  @classmethod
  def build(
    cls,
    n_qubits: int = 4,
    depth: int = 2,
    entanglement: Entanglement = "chain",
    readout: Readout = "expval",
    backend: ScoreBackend = "auto",
  ) -> ScoreCircuit:
    if (
      isinstance(n_qubits, bool)
      or not isinstance(n_qubits, int)
      or not (1 <= n_qubits <= statevector.MAX_QUBITS)
    ):
      raise ValueError(
        f"n_qubits must be an int in [1, {statevector.MAX_QUBITS}], got {n_qubits!r}."
      )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
      raise ValueError(f"depth must be an int >= 1, got {depth!r}.")
    if readout not in READOUTS:
      raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}.")
    if backend not in SCORE_BACKENDS:
      raise ValueError(f"backend must be one of {SCORE_BACKENDS}, got {backend!r}.")
    if backend == "pennylane":
      pennylane.check_installed()
    return cls(n_qubits, depth, entangling_pairs(entanglement, n_qubits), readout, backend)

  @property
  def degree(self) -> int:
    """Degree of ``Phi`` as a trigonometric polynomial in the score."""
    return self.depth * self.n_qubits

  def gates(self) -> tuple[Gate, ...]:
    """The gate list: layer ``l``'s ``RY``/``RZ`` on qubit ``i`` take angles
    ``l * n + i`` and ``(depth + l) * n + i``."""
    n, depth = self.n_qubits, self.depth
    return layered_gates(
      n, self.cnots, depth, lambda l, i: l * n + i, lambda l, i: (depth + l) * n + i
    )

  def angles(self, s: jax.Array, theta: jax.Array, phi: jax.Array) -> jax.Array:
    """Angles ``(..., 2 * depth * n)`` for scores ``s`` of shape ``(...)``."""
    ry = theta.reshape(-1) + s[..., None]
    rz = jnp.broadcast_to(phi.reshape(-1), ry.shape)
    return jnp.concatenate([ry, rz], axis=-1)

  def bias(self, s: jax.Array, theta: jax.Array, phi: jax.Array) -> jax.Array:
    """``Phi(s) = sum_k psi_k(C(s))``, elementwise over scores ``s``."""
    if self.backend in ("auto", "analytic"):
      return self._fourier(s, theta, phi)
    angles = self.angles(s, theta, phi)
    if self.backend == "statevector":
      probs = statevector.probabilities(self.gates(), self.n_qubits, angles)
    else:
      flat = angles.reshape(-1, angles.shape[-1])
      probs = _pennylane_probs(self, flat).reshape((*s.shape, -1))
    return self._readout(probs).astype(s.dtype)

  def coefficients(self, theta: jax.Array, phi: jax.Array) -> jax.Array:
    """``F_0 .. F_K`` of ``Phi(s) = sum_k F_k exp(i k s)`` (complex)."""
    samples = 2 * self.degree + 1
    grid = 2 * np.pi * np.arange(samples) / samples
    angles = self.angles(jnp.asarray(grid, theta.dtype), theta, phi)
    values = self._readout(statevector.probabilities(self.gates(), self.n_qubits, angles))
    return jnp.fft.rfft(values) / samples

  def _fourier(self, s: jax.Array, theta: jax.Array, phi: jax.Array) -> jax.Array:
    f = self.coefficients(theta, phi)
    re, im = 2 * jnp.real(f[1:]), -2 * jnp.imag(f[1:])
    return _series(s, jnp.real(f[0]).astype(s.dtype), re.astype(s.dtype), im.astype(s.dtype))

  def _readout(self, probs: jax.Array) -> jax.Array:
    """``(..., 2**n)`` probabilities -> ``(...)`` summed readout."""
    n = self.n_qubits
    if self.readout == "probs":
      return probs[..., :n].sum(-1)
    signs = jnp.asarray(statevector.z_signs(n).sum(0), probs.dtype)
    return jnp.matmul(probs, signs, precision=_HIGHEST)


def _cos_sin(s: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``cos(s), sin(s)`` from the range-reduced polynomials of
  :func:`~qsgd_optax.backends.analytic.sincospi`, in float32 (float64 keeps
  ``jnp.cos``/``jnp.sin``). On the CPU ``jnp.sin``/``jnp.cos`` of every score
  cost more than the rest of the layer."""
  if s.dtype == jnp.float64:
    return jnp.cos(s), jnp.sin(s)
  t = analytic.reduce_turns(s.astype(jnp.float32) / np.float32(np.pi))
  sin, cos = analytic.sincospi(t)
  return cos.astype(s.dtype), sin.astype(s.dtype)


def _harmonics(s: jax.Array, degree: int) -> Iterator[tuple[jax.Array, jax.Array]]:
  """Yields ``cos(k s), sin(k s)`` for ``k = 1..degree`` from one
  ``cos``/``sin`` pair, by the angle-sum recurrence (elementwise)."""
  c1, s1 = _cos_sin(s)
  ck, sk = c1, s1
  for _ in range(degree):
    yield ck, sk
    ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1


@jax.custom_vjp
def _series(s: jax.Array, f0: jax.Array, re: jax.Array, im: jax.Array) -> jax.Array:
  """``f0 + sum_k re_k cos(k s) + im_k sin(k s)``, elementwise over ``s``."""
  out = f0
  for k, (ck, sk) in enumerate(_harmonics(s, re.shape[0])):
    out = out + re[k] * ck + im[k] * sk
  return out + jnp.zeros_like(s)


def _series_fwd(
  s: jax.Array, f0: jax.Array, re: jax.Array, im: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
  return _series(s, f0, re, im), (s, re, im)


def _series_bwd(
  res: tuple[jax.Array, jax.Array, jax.Array], g: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  # Recomputes the harmonics instead of storing K of them per score.
  s, re, im = res
  c1, s1 = _cos_sin(s)
  k = jnp.arange(1, re.shape[0] + 1, dtype=s.dtype)

  Triple = tuple[jax.Array, jax.Array, jax.Array]

  def step(carry: Triple, coeffs: Triple) -> tuple[Triple, tuple[jax.Array, jax.Array]]:
    # One harmonic at a time: no K-fold recompute.
    ck, sk, ds = carry
    kk, r, i = coeffs
    ds = ds + kk * (i * ck - r * sk)
    sums = (jnp.sum(g * ck), jnp.sum(g * sk))
    return (ck * c1 - sk * s1, sk * c1 + ck * s1, ds), sums

  (_, _, ds), (dre, dim) = jax.lax.scan(step, (c1, s1, jnp.zeros_like(s)), (k, re, im))
  return g * ds, jnp.sum(g), dre, dim


_series.defvjp(_series_fwd, _series_bwd)


def _pennylane_probs(circuit: ScoreCircuit, flat: jax.Array) -> jax.Array:
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  from qsgd_optax.backends.pennylane import apply_gates, quiet_complex128

  @qml.qnode(qml.device("default.qubit", wires=circuit.n_qubits), interface="jax")
  def run(angles: jax.Array) -> Any:
    apply_gates(circuit.gates(), angles)
    return qml.probs(wires=range(circuit.n_qubits))

  with quiet_complex128():
    return jax.vmap(run)(flat).astype(flat.dtype)


class MultiHeadAttention(nnx.Module):
  """Self-attention whose logits get the circuit's bias when ``circuit`` is set.

  Args:
    d_model: model width; split over ``num_heads``.
    num_heads: number of heads.
    circuit: a :class:`ScoreCircuit` for quantum attention, or ``None`` for
      classical attention.
    dropout: dropout rate on the attention weights (its key comes from the
      ``rngs`` given at call time, so the module holds no RNG state).
    rngs: ``nnx.Rngs`` for the initial parameters.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn import MultiHeadAttention, ScoreCircuit
    >>> layer = MultiHeadAttention(16, 4, circuit=ScoreCircuit.build(),
    ...                            rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((2, 5, 16)), deterministic=True).shape
    (2, 5, 16)
  """

  def __init__(
    self,
    d_model: int,
    num_heads: int,
    *,
    circuit: Optional[ScoreCircuit] = None,
    dropout: float = 0.0,
    rngs: nnx.Rngs,
  ) -> None:
    if d_model % num_heads:
      raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}.")
    self.num_heads = num_heads
    self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)
    self.out = nnx.Linear(d_model, d_model, rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.circuit = circuit
    if circuit is not None:
      shape = (circuit.depth, circuit.n_qubits)
      self.theta = nnx.Param(jax.random.uniform(rngs.params(), shape, minval=-np.pi, maxval=np.pi))
      self.phi = nnx.Param(jax.random.uniform(rngs.params(), shape, minval=-np.pi, maxval=np.pi))

  def __call__(
    self,
    x: jax.Array,
    mask: Optional[jax.Array] = None,
    deterministic: bool = False,
    rngs: Optional[nnx.Rngs] = None,
  ) -> jax.Array:
    """``(batch, length, d_model)`` -> same; ``mask`` (broadcast to the
    ``(batch, heads, length, length)`` logits) keeps the ``True`` entries."""
    b, length, d = x.shape
    h = self.num_heads
    q, k, v = jnp.split(self.qkv(x).reshape(b, length, 3, h, d // h), 3, axis=2)
    q, k, v = (t[:, :, 0].transpose(0, 2, 1, 3) for t in (q, k, v))
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(d // h)
    logits = scores
    if self.circuit is not None:
      logits = scores + self.circuit.bias(scores, self.theta[...], self.phi[...])
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = self.dropout(jax.nn.softmax(logits, axis=-1), deterministic=deterministic, rngs=rngs)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(b, length, d)
    return self.out(out)


__all__ = ["READOUTS", "SCORE_BACKENDS", "MultiHeadAttention", "ScoreCircuit"]
