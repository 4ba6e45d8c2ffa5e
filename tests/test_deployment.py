"""deployment.model_deploy: flag validation, and real multi-replica runs (two clones on
two logical CPUs, two workers, a parameter-server cluster) in subprocesses."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import re
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from deployment import model_deploy
from slimkit import checkpoints
from slimkit import summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_image_classifier.py')
NO_GPU = not tf.config.list_physical_devices('GPU')


@pytest.fixture(autouse=True)
def no_tf_config(monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


# ------------------------------------------------------------------------------
# DeploymentConfig: what the flags mean, and what they may not combine to.
# ------------------------------------------------------------------------------


@pytest.mark.skipif(not NO_GPU, reason='checks the CPU-only placement')
def test_single_device_and_cpu_clones():
  single = model_deploy.DeploymentConfig()
  assert single.is_chief and single.tf_config is None
  assert single.clone_devices() == ['/device:CPU:0']
  assert single.describe() == 'default strategy on /device:CPU:0'
  clones = model_deploy.DeploymentConfig(num_clones=3, clone_on_cpu=True)
  assert clones.clone_devices() == ['/device:CPU:%d' % i for i in range(3)]
  with pytest.raises(ValueError, match='--num_clones=2 needs 2 GPUs but none is '
                     'visible; add --clone_on_cpu'):
    model_deploy.DeploymentConfig(num_clones=2).clone_devices()


def test_worker_hosts_build_tf_config():
  config = model_deploy.DeploymentConfig.from_config(
      {'worker_hosts': '10.0.0.1:2222, 10.0.0.2:2222', 'task': 1, 'worker_replicas': 2})
  assert config.tf_config == {'cluster': {'worker': ['10.0.0.1:2222', '10.0.0.2:2222']},
                              'task': {'type': 'worker', 'index': 1}}
  assert (config.num_replicas, config.replica_id, config.is_chief) == (2, 1, False)
  assert 'MultiWorkerMirroredStrategy: 2 workers, this is task 1' in config.describe()


def test_tf_config_sets_replicas_and_chief(monkeypatch):
  monkeypatch.setenv('TF_CONFIG', json.dumps({
      'cluster': {'worker': ['a:1', 'b:2', 'c:3']}, 'task': {'type': 'worker',
                                                               'index': 0}}))
  config = model_deploy.DeploymentConfig()
  assert (config.num_replicas, config.replica_id, config.is_chief) == (3, 0, True)


@pytest.mark.parametrize('kwargs, tf_config, message', [
    ({'num_replicas': 2}, None, '--worker_replicas=2 needs the cluster: set TF_CONFIG '
     'or --worker_hosts'),
    ({'replica_id': 1}, None, '--task=1 but there is a single worker'),
    ({'worker_hosts': 'a:1,b:2', 'num_replicas': 3}, None,
     '--worker_hosts lists 2 hosts but --worker_replicas=3'),
    ({'worker_hosts': 'a:1,b'}, None, "--worker_hosts: 'b' is not host:port"),
    ({'num_ps_tasks': 1}, None, '--num_ps_tasks=1 needs TF_CONFIG'),
    ({}, {'cluster': {'worker': ['a:1']}, 'task': {'type': 'worker', 'index': 1}},
     '--task=1 must be < the number of workers \\(1\\)'),
    ({'num_replicas': 3}, {'cluster': {'worker': ['a:1', 'b:2']},
                           'task': {'type': 'worker', 'index': 0}},
     '--worker_replicas=3 but TF_CONFIG lists 2 worker'),
    ({}, {'cluster': {'worker': ['a:1'], 'ps': ['p:1']},
          'task': {'type': 'worker', 'index': 0}}, 'TF_CONFIG needs a "chief" job'),
    ({'num_ps_tasks': 2}, {'cluster': {'chief': ['c:1'], 'worker': ['a:1'],
                                       'ps': ['p:1']}, 'task': {'type': 'chief'}},
     '--num_ps_tasks=2 but TF_CONFIG lists 1 ps'),
    ({}, 'not json', 'TF_CONFIG is not valid JSON'),
])
def test_invalid_deployments_name_the_flag(monkeypatch, kwargs, tf_config, message):
  if tf_config is not None:
    monkeypatch.setenv('TF_CONFIG', tf_config if isinstance(tf_config, str)
                       else json.dumps(tf_config))
  with pytest.raises(ValueError, match=message):
    model_deploy.DeploymentConfig(**kwargs)


def test_parameter_server_roles(monkeypatch):
  cluster = {'chief': ['c:1'], 'worker': ['w:1', 'w:2'], 'ps': ['p:1']}
  for task, chief in (({'type': 'chief', 'index': 0}, True),
                      ({'type': 'worker', 'index': 1}, False),
                      ({'type': 'ps', 'index': 0}, False)):
    monkeypatch.setenv('TF_CONFIG', json.dumps({'cluster': cluster, 'task': task}))
    config = model_deploy.DeploymentConfig()
    assert config.uses_ps and config.num_ps_tasks == 1 and config.num_ps_workers == 2
    assert config.is_chief == chief and config.task_type == task['type']


def test_sync_replicas_maps_to_all_reduce():
  assert model_deploy.replication_note({'replicas_to_aggregate': 1}, 4) is None
  note = model_deploy.replication_note({'sync_replicas': True,
                                        'replicas_to_aggregate': 4}, 2)
  assert 'always synchronous' in note and 'all 2 replica(s)' in note


# ------------------------------------------------------------------------------
# Real runs.
# ------------------------------------------------------------------------------

TWO_CLONES = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, %(root)r)
    from deployment import model_deploy
    model_deploy.configure_logical_cpus(2)  # before TensorFlow runs anything
    from absl import flags
    from absl import logging
    logging.set_verbosity(logging.INFO)
    from nets import nets_factory
    from slimkit import checkpoints, summaries, train
    from slimkit import flags as slim_flags
    # LeNet without dropout: one device and two replicas draw different masks.
    build = nets_factory.build_model
    nets_factory.build_model = lambda *a, **k: build(*a, dropout_keep_prob=1.0, **k)
    slim_flags.define_train_flags()
    base = slim_flags.defaults(flags.FLAGS)
    # 64 samples / global batch 16: decay every 0.25 epoch = every global step
    # (TF-Slim counted per-clone batches of 8: every 2 steps with two clones).
    # Few steps: later, float round-off between the two reductions flips ties
    # in LeNet's max pools and the runs drift apart for that reason alone.
    base.update(dataset_name='mnist', dataset_dir=%(data)r, model_name='lenet',
                batch_size=16, optimizer='momentum', learning_rate=0.01,
                learning_rate_decay_type='exponential', learning_rate_decay_factor=0.5,
                num_epochs_per_decay=0.25, weight_decay=0.004, max_number_of_steps=4,
                log_every_n_steps=2, random_seed=3, clone_on_cpu=True)
    out = {}
    for clones in (1, 2):
      train_dir = os.path.join(%(tmp)r, 'clones%%d' %% clones)
      result = train.run(dict(base, num_clones=clones, train_dir=train_dir))
      weights = checkpoints.read_variables(result['checkpoint'])
      with open(os.path.join(train_dir, 'run_config.json')) as f:
        record = json.load(f)
      out[clones] = {'step': result['step'], 'replicas': record['num_replicas'],
                     'lr': summaries.read_scalars(train_dir)['learning_rate'][-1][1],
                     'weights': {k: v.tolist() for k, v in weights.items()}}
    try:
      train.run(dict(base, num_clones=2, batch_size=15,
                     train_dir=os.path.join(%(tmp)r, 'odd')))
    except ValueError as e:
      out['odd_batch_error'] = str(e)
    print('RESULT ' + json.dumps(out))
''')


@pytest.mark.slow
def test_two_clones_on_two_cpus_match_one_device(tmp_path, tiny_mnist_dir):
  script = TWO_CLONES % {'root': ROOT, 'data': tiny_mnist_dir, 'tmp': str(tmp_path)}
  proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True,
                        text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'MirroredStrategy on /device:CPU:0, /device:CPU:1' in proc.stderr
  out = json.loads(proc.stdout.split('RESULT ', 1)[1])
  one, two = out['1'], out['2']
  assert (one['replicas'], two['replicas']) == (1, 2)
  assert one['step'] == two['step'] == 4
  # The schedule counts global steps in both: four decays by step 4.
  assert one['lr'] == two['lr'] == pytest.approx(0.01 * 0.5 ** 4)
  for name, value in one['weights'].items():
    np.testing.assert_allclose(two['weights'][name], value, atol=1e-5, err_msg=name)
  assert 'is not divisible by the 2 replicas' in out['odd_batch_error']


def _train_args(train_dir, data_dir, steps):
  return [sys.executable, SCRIPT, '--train_dir=%s' % train_dir, '--dataset_name=mnist',
          '--dataset_dir=%s' % data_dir, '--model_name=lenet', '--batch_size=16',
          '--optimizer=sgd', '--learning_rate_decay_type=fixed', '--weight_decay=0',
          '--max_number_of_steps=%d' % steps, '--log_every_n_steps=2', '--random_seed=1']


def _final_line(stderr, step):
  """'step 4/4: loss ... accuracy ...' of the last log line, without the rates."""
  found = re.findall(r'step %d/%d: loss [\d.]+ \(cross-entropy [\d.]+\), lr \S+, '
                     r'accuracy [\d.]+' % (step, step), stderr)
  assert len(found) == 1, stderr[-3000:]
  return found[0]


@pytest.mark.slow
def test_two_workers_train_one_model(tmp_path, tiny_mnist_dir):
  hosts = ','.join('127.0.0.1:%d' % p for p in free_ports(2))
  train_dir = str(tmp_path / 'multi')
  procs = [subprocess.Popen(_train_args(train_dir, tiny_mnist_dir, 4) + [
      '--worker_replicas=2', '--worker_hosts=%s' % hosts, '--task=%d' % task],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for task in (0, 1)]
  outputs = [p.communicate(timeout=240)[1] for p in procs]
  for proc, stderr in zip(procs, outputs):
    assert proc.returncode == 0, stderr[-3000:]
  assert 'this is task 0 (chief)' in outputs[0] and 'this is task 1' in outputs[1]
  assert 'global batch 16 over 2 replica(s)' in outputs[0]
  # One synchronous model: both workers saw the same loss at the last step ...
  assert _final_line(outputs[0], 4) == _final_line(outputs[1], 4)
  # ... and only the chief wrote the checkpoint, at the right step.
  assert checkpoints.step_of(checkpoints.latest(train_dir)) == 4
  assert 'done at step 4; checkpoint None' in outputs[1]


@pytest.mark.slow
def test_parameter_server_cluster_trains_from_the_chief(tmp_path, tiny_mnist_dir):
  chief, worker, ps = ('127.0.0.1:%d' % p for p in free_ports(3))
  cluster = {'chief': [chief], 'worker': [worker], 'ps': [ps]}
  train_dir = str(tmp_path / 'ps')
  args = _train_args(train_dir, tiny_mnist_dir, 6) + ['--num_ps_tasks=1',
                                                      '--moving_average_decay=0.9']

  def start(task_type):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {'cluster': cluster, 'task': {'type': task_type, 'index': 0}}))
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

  servers = [start('ps'), start('worker')]
  try:
    coordinator = start('chief')
    stderr = coordinator.communicate(timeout=240)[1]
  finally:
    for server in servers:  # they serve until stopped, as TF's ps/worker tasks do
      server.kill()
      server.communicate()
  assert coordinator.returncode == 0, stderr[-3000:]
  assert 'ParameterServerStrategy: 1 ps task(s)' in stderr
  prefix = checkpoints.latest(train_dir)
  assert checkpoints.step_of(prefix) == 6
  assert checkpoints.read_variables(prefix, 'ema')  # variables lived on the ps
  assert summaries.read_scalars(train_dir)['total_loss'][-1][0] == 6
