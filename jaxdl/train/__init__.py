"""The one trainer: state, jit-compiled steps over a ('data',) mesh, checkpoints, metrics and the loop."""
from jaxdl.train.state import TrainState, params_fingerprint  # noqa: F401
from jaxdl.train.step import make_eval_step, make_train_step  # noqa: F401
