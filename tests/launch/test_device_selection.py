"""What `jax.distributed.initialize` is given, as a pure function of the environment (issue 15, defect 1; issue 11,
defect 9's timeouts), and each process's share of the training data (Grain sharding by process)."""
import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError
from jaxdl.train import sharding


def slurm(ntasks, procid, localid, nodeid=0, tasks_per_node='2', **extra):
  return {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': str(ntasks), 'SLURM_PROCID': str(procid),
          'SLURM_LOCALID': str(localid), 'SLURM_NODEID': str(nodeid), 'SLURM_STEP_TASKS_PER_NODE': tasks_per_node,
          'SLURM_STEP_NODELIST': 'gpu[01-02]', **extra}


def test_gpus_per_task_each_task_drives_its_one_visible_gpu():
  # --gpus-per-task=1 binds one GPU per task: task 1 sees CUDA_VISIBLE_DEVICES=1, i.e. its own GPU as ordinal 0.
  # jax's default would ask for local_device_ids=[SLURM_LOCALID]=[1], an ordinal this task cannot see.
  for localid in range(4):
    env = slurm(8, 4 + localid, localid, nodeid=1, tasks_per_node='4(x2)', CUDA_VISIBLE_DEVICES=str(localid))
    args = sharding.distributed_args(env)
    assert args['local_device_ids'] == [0]
    assert (args['num_processes'], args['process_id'], args['coordinator_address']) == (8, 4 + localid, None)


def test_gpus_per_node_each_local_rank_takes_its_own_gpu():
  for localid in range(8):
    env = slurm(16, 8 + localid, localid, nodeid=1, tasks_per_node='8(x2)', CUDA_VISIBLE_DEVICES='0,1,2,3,4,5,6,7')
    assert sharding.local_device_ids(env) == [localid]


def test_fewer_tasks_than_gpus_share_them_and_one_task_takes_all():
  env = slurm(4, 1, 1, tasks_per_node='2(x2)', CUDA_VISIBLE_DEVICES='4,5,6,7')
  assert sharding.local_device_ids(env) == [2, 3]
  env = slurm(2, 0, 0, tasks_per_node='1(x2)', CUDA_VISIBLE_DEVICES='0,1,2,3')
  assert sharding.local_device_ids(env) == [0, 1, 2, 3]
  # uneven nodes ('3,1'): node 1 runs one task, which takes its node's GPUs
  env = slurm(4, 3, 0, nodeid=1, tasks_per_node='3,1', CUDA_VISIBLE_DEVICES='0,1')
  assert sharding.local_device_ids(env) == [0, 1]


def test_unrestricted_devices_and_cpu():
  assert sharding.local_device_ids(slurm(2, 1, 1, tasks_per_node='2')) == [1]   # all visible: one per local rank
  assert sharding.local_device_ids(slurm(2, 1, 0, nodeid=1, tasks_per_node='1(x2)')) is None   # all of them
  assert sharding.local_device_ids(slurm(2, 1, 1, JAX_PLATFORMS='cpu', CUDA_VISIBLE_DEVICES='1')) is None


def test_gpus_that_do_not_divide_among_tasks_are_a_user_error():
  with pytest.raises(UserError, match='cannot be shared equally'):
    sharding.local_device_ids(slurm(3, 0, 0, tasks_per_node='3', CUDA_VISIBLE_DEVICES='0,1'))


def test_single_process_and_local_launcher():
  assert sharding.distributed_args({}) is None
  assert sharding.distributed_args({'SLURM_NTASKS': '1', 'SLURM_JOB_ID': '3'}) is None
  assert sharding.distributed_args({'SLURM_NTASKS': '2'}) is None   # no job: not inside SLURM
  env = {'JAX_COORDINATOR_ADDRESS': '127.0.0.1:1234', 'JAX_NUM_PROCESSES': '3', 'JAX_PROCESS_ID': '2'}
  args = sharding.distributed_args(env)
  assert {k: args[k] for k in ('coordinator_address', 'num_processes', 'process_id', 'local_device_ids')} == {
      'coordinator_address': '127.0.0.1:1234', 'num_processes': 3, 'process_id': 2, 'local_device_ids': None}


def test_timeouts_come_from_the_environment_and_the_runtime_waits_longer_than_jaxdl():
  assert sharding.dist_timeouts({}) == (sharding.DEFAULT_INIT_TIMEOUT_S, sharding.DEFAULT_HEARTBEAT_TIMEOUT_S)
  env = slurm(2, 0, 0, JAXDL_DIST_INIT_TIMEOUT='7', JAXDL_DIST_HEARTBEAT_TIMEOUT='3')
  assert sharding.dist_timeouts(env) == (7, 3)
  args = sharding.distributed_args(env)
  # jaxdl's watchdog must speak first: the C++ runtime's own timeouts abort with a stack trace.
  assert args['initialization_timeout'] > 7 and args['heartbeat_timeout_seconds'] > 3
  for bad in ('0', '-1', 'soon', '1.5'):
    with pytest.raises(UserError, match='JAXDL_DIST_HEARTBEAT_TIMEOUT'):
      sharding.dist_timeouts({'JAXDL_DIST_HEARTBEAT_TIMEOUT': bad})


@pytest.mark.parametrize('processes,batch', [(2, 8), (3, 6), (4, 8)])
def test_each_process_reads_a_disjoint_share_that_covers_the_epoch(processes, batch):
  n = 48   # an epoch = n / batch global batches
  x = np.arange(n, dtype=np.float32)[:, None]
  ds = data.from_arrays('ids', 'classification', {'train': (x, np.arange(n) % 3), 'test': (x, np.arange(n) % 3)})
  seen = []
  for p in range(processes):
    it = data.train_iterator(ds, 'train', global_batch_size=batch, seed=5, process_index=p, process_count=processes)
    seen.append(np.concatenate([next(it)['inputs'][:, 0].astype(int) for _ in range(n // batch)]))
  counts = [len(s) for s in seen]
  assert counts == [n // processes] * processes                      # equal shares
  for p in range(processes):
    assert len(set(seen[p])) == len(seen[p])                         # no example twice within a process
    for q in range(p + 1, processes):
      assert not set(seen[p]) & set(seen[q])                         # disjoint across processes
  assert sorted(np.concatenate(seen).tolist()) == list(range(n))     # together: the whole split, once
