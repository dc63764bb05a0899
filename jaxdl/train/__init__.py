"""The one trainer. One job per module, in the order data flows:

  setup.py       config -> TrainSetup: dataset, model, loss, optimiser, mesh, jitted steps, initial state
  step.py        the pure, jit-compiled train and eval steps
  state.py       TrainState (a pytree of arrays) and its fingerprint
  sharding.py    devices, processes and the ('data',) mesh; jax.distributed start-up
  loop.py        `train_and_evaluate`: the loop, top to bottom
  evaluation.py  one evaluation pass (and `jaxdl eval` of a checkpoint)
  checkpoint.py  Orbax checkpoints: save (finite states only), restore with fallback past unreadable ones
  workdir.py     a run's directory: config.json, summary.json, permission and consistency checks
  metrics.py     metrics.jsonl, TensorBoard, the terminal
  preemption.py  SIGTERM from the first instant, the 'stopped, resumable' exit status
  pretrained.py  another run's weights: warm starts, transfer learning, a distillation teacher

Nothing is imported here, so `jaxdl.train.preemption` can be armed before JAX is imported.
"""
