"""Optimisation (course chapter 2): every optimiser an optax chain built by name (`chains`), learning-rate
schedules (`schedules`), and second-order methods (`second_order`). Importing the package registers the
optimisers in `jaxdl.registry.OPTIMIZERS`."""
from jaxdl.optim.chains import build_optimizer, check_config  # noqa: F401
