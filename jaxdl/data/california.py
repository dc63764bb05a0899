"""California housing (seed 000, "Example on a regression problem"): 20,640 districts × 8 features → median value.

Read from scikit-learn's local cache only (`download_if_missing=False`): nothing downloads at run time. Fetch it
once where there is network:  python -c "from sklearn.datasets import fetch_california_housing as f; f()"
Inputs are standardised with the TRAIN split's mean and std, as the notes do ("at least normalize the input").
"""
from __future__ import annotations

import os

import numpy as np

from jaxdl.data import Dataset, from_arrays
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

FETCH = 'python -c "from sklearn.datasets import fetch_california_housing as f; f()"'


@DATASETS.register('california_housing', stock=True, source='seed 000 (scikit-learn; fetch once)',
                   description='20,640 × 8 features -> median house value (100 k$); 80/20 split')
def california_housing(*, data_home: str = '', test_fraction: float = 0.2, seed: int = 0) -> Dataset:
  from sklearn.datasets import fetch_california_housing  # pylint: disable=g-import-not-at-top
  if data_home and not os.path.isdir(data_home):  # scikit-learn would create it, empty: say so instead
    raise UserError(f'config.data.data_home={data_home!r} is not a folder', "scikit-learn's data folder holding "
                    'california_housing', f'fix the path, or fetch the data once with: {FETCH}')
  try:
    d = fetch_california_housing(data_home=data_home or None, download_if_missing=False)
  except OSError as e:
    raise UserError('california_housing is not in the scikit-learn cache' + (f' {data_home!r}' if data_home else ''),
                    'a local copy fetched once by scikit-learn', f'fetch it once with: {FETCH}') from e
  if not 0 < test_fraction < 1:
    raise UserError(f'config.data.test_fraction={test_fraction}', 'a fraction in (0, 1)', 'fix it')
  x, y = d.data.astype(np.float32), d.target.astype(np.float32)
  perm = np.random.default_rng(seed).permutation(len(x))
  n_test = int(round(test_fraction * len(x)))
  test, train = perm[:n_test], perm[n_test:]
  mean, std = x[train].mean(0), x[train].std(0)
  norm = lambda a: (a - mean) / std
  return from_arrays('california_housing', 'regression', {'train': (norm(x[train]), y[train]),
                                                         'test': (norm(x[test]), y[test])})
