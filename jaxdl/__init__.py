"""jaxdl: a deep-learning course as tested, reproducible JAX/Flax code."""

__version__ = '0.1.0'
