"""Cross-process CPU collectives on the loopback address, for one-machine runs.

``jax.distributed`` on CPU joins processes with Gloo's TCP collectives, which
listen on the address of ``gethostname()``; jax has no public switch for that
address. The multi-process test and the multi-host example run several
processes on one machine and must only talk over ``127.0.0.1``, so this module
re-registers jax's CPU backend with Gloo bound there. It uses jax's private
API (``jax._src``), so it is written once, here, and checks the names it needs
before touching them; ``tests/test_multiprocess.py`` runs it on every jax the
CI tests. On real hosts, do not call it: the default is what you want.
"""

from __future__ import annotations

import importlib
from typing import Any


def bind_gloo_to_loopback() -> None:
  """Makes Gloo's TCP collectives listen on ``127.0.0.1``.

  Call after ``jax.distributed.initialize`` and before the first computation.

  Raises:
    RuntimeError: the installed jax lacks the private names this needs.
  """
  import jax
  from jax._src import distributed, xla_bridge

  private = importlib.import_module("jax._src.lib")
  lib: Any = getattr(private, "_jax", None) or getattr(private, "xla_extension", None)  # < 0.6
  needed = (lib, "make_gloo_tcp_collectives"), (xla_bridge, "make_cpu_client")
  missing = [name for module, name in needed if not hasattr(module, name)]
  missing += [] if hasattr(xla_bridge, "register_backend_factory") else ["register_backend_factory"]
  if missing:
    raise RuntimeError(
      f"jax {jax.__version__} has no {', '.join(missing)}: the loopback Gloo binding "
      "(examples/_loopback.py) needs updating for this jax."
    )

  def factory() -> Any:
    collectives = lib.make_gloo_tcp_collectives(
      distributed_client=distributed.global_state.client, hostname="127.0.0.1"
    )
    return xla_bridge.make_cpu_client(collectives=collectives)

  xla_bridge.register_backend_factory("cpu", factory, priority=0, fail_quietly=False)


__all__ = ["bind_gloo_to_loopback"]
