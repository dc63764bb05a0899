"""`--config.train.profile_steps=START,COUNT`: a jax.profiler trace of those steps in WORKDIR/profile (issue 15)."""
import pytest

from helpers import REPO, small_digits_config
from jaxdl import cli
from jaxdl import config as config_lib
from jaxdl.errors import UserError
from jaxdl.train.loop import train_and_evaluate


def test_the_traced_steps_write_a_trace_that_xprof_reads(tmp_path):
  summary = train_and_evaluate(small_digits_config(num_steps=6, profile_steps='2,3', eval_every=0), tmp_path,
                               quiet=True)
  assert summary['status'] == 'completed'
  traces = list((tmp_path / 'profile' / 'plugins' / 'profile').glob('*/*.xplane.pb'))   # TensorBoard's layout
  assert len(traces) == 1 and traces[0].stat().st_size > 0


def test_the_override_parses_and_bad_values_are_user_errors():
  argv = [f'--config={REPO / "experiments" / "mlp_digits.py"}', '--config.train.profile_steps=5,10']
  c = cli.load_config(argv)
  assert c.train.profile_steps == '5,10' and config_lib.profile_range(c.train) == (5, 14)
  c.train.profile_steps = ''
  assert config_lib.profile_range(c.train) is None
  for bad in ('5', '0,3', '5,0', 'a,b', '1,2,3'):
    c.train.profile_steps = bad
    with pytest.raises(UserError, match='profile_steps'):
      config_lib.validate(c)
