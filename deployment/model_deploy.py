"""Where the model runs: TF-Slim's DeploymentConfig on tf.distribute.

TF-Slim built one graph clone per device and summed the clones' gradients by hand.
Here the same flags pick a tf.distribute.Strategy, which does the replication:

  --num_clones=N                MirroredStrategy over N GPUs (all-reduce, synchronous)
  --num_clones=N --clone_on_cpu MirroredStrategy over N logical CPU devices
  --worker_replicas=N --task=i  MultiWorkerMirroredStrategy (TF_CONFIG, or built from
                                --worker_hosts when TF_CONFIG is unset)
  --num_ps_tasks=K              ParameterServerStrategy from TF_CONFIG (chief, worker
                                and ps jobs); the chief drives a ClusterCoordinator
  otherwise                     one device: OneDeviceStrategy on GPU:0 if visible,
                                else the default strategy (CPU:0)

Inputs are read and preprocessed on the host CPU and prefetched to the replicas.
"""

import contextlib
import json
import os

from absl import logging
import keras
import tensorflow as tf

WORKER_JOB = 'worker'
PS_JOB = 'ps'
CHIEF_JOB = 'chief'


def check_master(master):
  """TF-Slim's --master named a TF1 session master; TF2 has none."""
  if master:
    raise ValueError('--master=%s: TF1 session masters do not exist in TF2; leave it '
                     'empty (a cluster comes from TF_CONFIG or --worker_hosts)' % master)


@contextlib.contextmanager
def precision_policy(mixed_precision):
  """Keras' global dtype policy for --mixed_precision inside the block, restored after.

  'bfloat16' and 'float16' compute in that type with float32 variables; None and
  'float32' (which overrides a preset's choice) keep float32.
  """
  policy = keras.mixed_precision.global_policy()
  if mixed_precision in ('bfloat16', 'float16'):
    keras.mixed_precision.set_global_policy('mixed_' + mixed_precision)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(policy)


def configure_logical_cpus(num_devices):
  """Splits the host CPU into num_devices logical devices (before any op runs).

  MirroredStrategy then places one replica on each, which is how --clone_on_cpu
  clones run (and how the multi-clone path is tested without GPUs). A second call
  with the same or a smaller count is a no-op; a larger count after TensorFlow has
  started raises, since the device list is fixed at start-up.
  """
  cpu = tf.config.list_physical_devices('CPU')[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
  except RuntimeError:  # the runtime has started: its device list is fixed
    have = len(tf.config.list_logical_devices('CPU'))
    if have < num_devices:
      raise ValueError(
          '--num_clones=%d --clone_on_cpu: the CPU must be split into %d logical '
          'devices before TensorFlow starts, but it already runs with %d'
          % (num_devices, num_devices, have)) from None


def cluster_from_env():
  """The parsed TF_CONFIG, or None when unset."""
  text = os.environ.get('TF_CONFIG')
  if not text:
    return None
  try:
    spec = json.loads(text)
  except ValueError as e:
    raise ValueError('TF_CONFIG is not valid JSON: %s' % e) from None
  if 'cluster' not in spec or 'task' not in spec:
    raise ValueError('TF_CONFIG must hold "cluster" and "task", got keys %s'
                     % sorted(spec))
  return spec


def tf_config_from_hosts(worker_hosts, task):
  """The TF_CONFIG for --worker_hosts=h1:p1,h2:p2 --task=i (all workers, no ps)."""
  hosts = [h.strip() for h in worker_hosts.split(',') if h.strip()]
  for host in hosts:
    if ':' not in host:
      raise ValueError('--worker_hosts: %r is not host:port' % host)
  return {'cluster': {WORKER_JOB: hosts}, 'task': {'type': WORKER_JOB, 'index': task}}


class DeploymentConfig(object):
  """TF-Slim's DeploymentConfig, validated, with a strategy() that builds it.

  num_clones: model replicas on this machine (GPUs, or CPUs with clone_on_cpu).
  replica_id, num_replicas: this worker's task index and the number of workers.
  num_ps_tasks: parameter servers (0 = variables live with the workers).
  worker_hosts: 'host:port,...' to build TF_CONFIG when it is unset.
  """

  def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0, num_replicas=1,
               num_ps_tasks=0, worker_hosts=None):
    if num_clones < 1:
      raise ValueError('--num_clones must be >= 1, got %d' % num_clones)
    if num_replicas < 1:
      raise ValueError('--worker_replicas must be >= 1, got %d' % num_replicas)
    if num_ps_tasks < 0:
      raise ValueError('--num_ps_tasks must be >= 0, got %d' % num_ps_tasks)
    self.num_clones = num_clones
    self.clone_on_cpu = clone_on_cpu
    self.replica_id = replica_id
    self.num_replicas = num_replicas
    self.num_ps_tasks = num_ps_tasks
    self.worker_hosts = worker_hosts
    self.tf_config = self._resolve_cluster()
    self._strategy = None

  @classmethod
  def from_config(cls, config):
    """From the train flags' dict (num_clones, clone_on_cpu, task, ...)."""
    return cls(num_clones=config.get('num_clones', 1),
               clone_on_cpu=config.get('clone_on_cpu', False),
               replica_id=config.get('task', 0),
               num_replicas=config.get('worker_replicas', 1),
               num_ps_tasks=config.get('num_ps_tasks', 0),
               worker_hosts=config.get('worker_hosts'))

  # --------------------------------------------------------------------------
  # Validation: the cluster this process belongs to.
  # --------------------------------------------------------------------------

  def _resolve_cluster(self):
    """Checks the flags against TF_CONFIG (or builds it); returns it or None."""
    spec = cluster_from_env()
    if spec is None and self.worker_hosts:
      spec = tf_config_from_hosts(self.worker_hosts, self.replica_id)
      count = len(spec['cluster'][WORKER_JOB])
      if self.num_replicas not in (1, count):
        raise ValueError('--worker_hosts lists %d hosts but --worker_replicas=%d'
                         % (count, self.num_replicas))
      self.num_replicas = count
    if spec is None:
      if self.num_ps_tasks:
        raise ValueError('--num_ps_tasks=%d needs TF_CONFIG describing the cluster '
                         '(jobs "chief", "worker" and "ps")' % self.num_ps_tasks)
      if self.num_replicas > 1:
        raise ValueError('--worker_replicas=%d needs the cluster: set TF_CONFIG or '
                         '--worker_hosts=host:port,... (one per worker)'
                         % self.num_replicas)
      if self.replica_id != 0:
        raise ValueError('--task=%d but there is a single worker (--worker_replicas=1)'
                         % self.replica_id)
      return None
    cluster, task = spec['cluster'], spec['task']
    workers = len(cluster.get(WORKER_JOB, [])) + len(cluster.get(CHIEF_JOB, []))
    ps = len(cluster.get(PS_JOB, []))
    if self.num_ps_tasks and ps != self.num_ps_tasks:
      raise ValueError('--num_ps_tasks=%d but TF_CONFIG lists %d ps task(s)'
                       % (self.num_ps_tasks, ps))
    if ps and not self.num_ps_tasks:
      self.num_ps_tasks = ps
    if self.num_ps_tasks and CHIEF_JOB not in cluster:
      raise ValueError('--num_ps_tasks=%d: TF_CONFIG needs a "chief" job, which runs '
                       'the training loop (workers and ps only serve)' % ps)
    if not self.num_ps_tasks and self.num_replicas not in (1, workers):
      raise ValueError('--worker_replicas=%d but TF_CONFIG lists %d worker(s)'
                       % (self.num_replicas, workers))
    if not self.num_ps_tasks:
      self.num_replicas = workers
    index = int(task.get('index', 0))
    if task.get('type') == WORKER_JOB and CHIEF_JOB in cluster:
      index += len(cluster[CHIEF_JOB])
    if self.replica_id not in (0, index):
      raise ValueError('--task=%d but TF_CONFIG says this is task %d'
                       % (self.replica_id, index))
    self.replica_id = index
    if not self.num_ps_tasks and self.replica_id >= self.num_replicas:
      raise ValueError('--task=%d must be < the number of workers (%d)'
                       % (self.replica_id, self.num_replicas))
    if self.num_ps_tasks and self.num_clones > 1:
      raise ValueError('--num_ps_tasks with --num_clones=%d: each parameter-server '
                       'worker uses its own devices; leave --num_clones=1'
                       % self.num_clones)
    if self.num_replicas > 1 and self.clone_on_cpu and self.num_clones > 1:
      raise ValueError('--clone_on_cpu --num_clones=%d with several workers: '
                       'MultiWorkerMirroredStrategy uses one CPU device per worker'
                       % self.num_clones)
    return spec

  @property
  def task_type(self):
    """'chief', 'worker' or 'ps' in a cluster, else None."""
    return self.tf_config['task']['type'] if self.tf_config else None

  @property
  def uses_ps(self):
    return self.num_ps_tasks > 0

  @property
  def num_ps_workers(self):
    """Workers executing steps for a parameter-server chief."""
    return len(self.tf_config['cluster'].get(WORKER_JOB, [])) if self.uses_ps else 0

  @property
  def is_chief(self):
    """The task that writes checkpoints and summaries (Slim: task 0)."""
    if self.uses_ps:
      return self.task_type == CHIEF_JOB
    return self.replica_id == 0

  # --------------------------------------------------------------------------
  # Devices and strategies.
  # --------------------------------------------------------------------------

  def clone_devices(self):
    """The devices of this machine's replicas ('/device:GPU:0', ...)."""
    if self.clone_on_cpu:
      return ['/device:CPU:%d' % i for i in range(self.num_clones)]
    gpus = tf.config.list_physical_devices('GPU')
    if not gpus:
      if self.num_clones > 1:
        raise ValueError('--num_clones=%d needs %d GPUs but none is visible; add '
                         '--clone_on_cpu to split the CPU instead'
                         % (self.num_clones, self.num_clones))
      return ['/device:CPU:0']
    if self.num_clones > len(gpus):
      raise ValueError('--num_clones=%d but only %d GPU(s) are visible'
                       % (self.num_clones, len(gpus)))
    return ['/device:GPU:%d' % i for i in range(self.num_clones)]

  def prepare_devices(self):
    """Device set-up that must happen before TensorFlow runs its first op."""
    if self.clone_on_cpu and self.num_clones > 1 and self.num_replicas == 1:
      configure_logical_cpus(self.num_clones)

  def strategy(self):
    """The tf.distribute.Strategy for these flags (built once)."""
    if self._strategy is None:
      self._strategy = self._build_strategy()
    return self._strategy

  def _build_strategy(self):
    if self.uses_ps:
      os.environ['TF_CONFIG'] = json.dumps(self.tf_config)
      resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
      return tf.distribute.ParameterServerStrategy(resolver)
    if self.num_replicas > 1:
      os.environ['TF_CONFIG'] = json.dumps(self.tf_config)
      return tf.distribute.MultiWorkerMirroredStrategy()
    self.prepare_devices()
    devices = self.clone_devices()
    if devices == ['/device:CPU:0']:
      # Measured: on a CPU the default strategy is as fast as OneDeviceStrategy
      # or faster (no device prefetch stage between tf.data and the step).
      return tf.distribute.get_strategy()
    if len(devices) == 1:
      return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)

  def describe(self):
    """One line for the log: what runs where."""
    if self.uses_ps:
      return ('ParameterServerStrategy: %d ps task(s), workers from TF_CONFIG; this '
              'task is %s' % (self.num_ps_tasks, self.task_type))
    if self.num_replicas > 1:
      return ('MultiWorkerMirroredStrategy: %d workers, this is task %d%s'
              % (self.num_replicas, self.replica_id,
                 ' (chief)' if self.is_chief else ''))
    devices = self.clone_devices()
    if devices == ['/device:CPU:0']:
      return 'default strategy on /device:CPU:0'
    kind = 'OneDeviceStrategy' if len(devices) == 1 else 'MirroredStrategy'
    return '%s on %s' % (kind, ', '.join(devices))


def serve_forever(deploy_config):
  """Runs this process as a parameter-server cluster's worker or ps: never returns.

  With ParameterServerStrategy only the chief runs the training program; the other
  tasks host variables (ps) or execute the steps the chief schedules (worker).
  """
  spec = deploy_config.tf_config
  task = spec['task']
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  logging.info('serving as %s %d of the parameter-server cluster',
               task['type'], task.get('index', 0))
  server = tf.distribute.Server(
      resolver.cluster_spec(), job_name=task['type'], task_index=task.get('index', 0),
      protocol=resolver.rpc_layer or 'grpc', start=True)
  server.join()


def replication_note(config, num_replicas):
  """How TF-Slim's --sync_replicas/--replicas_to_aggregate map to all-reduce."""
  if not config.get('sync_replicas') and config.get('replicas_to_aggregate', 1) == 1:
    return None
  return ('--sync_replicas/--replicas_to_aggregate: replicas are always synchronous '
          'here (all-reduce); each step averages the gradients of all %d replica(s), '
          'so --replicas_to_aggregate=%d has no further effect'
          % (num_replicas, config.get('replicas_to_aggregate', 1)))
