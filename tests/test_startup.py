"""TensorFlow's C++ start-up notices are filtered; real warnings, errors and
tracebacks still reach the user."""

import os
import subprocess
import sys

from deployment import cpu
from deployment import startup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CPU_ONLY_START = [
    'WARNING: All log messages before absl::InitializeLog() is called are written '
    'to STDERR',
    'I0000 00:00:1796670490.137679   13025 port.cc:153] oneDNN custom operations are '
    'on. You may see slightly different numerical results',
    'I0000 00:00:1796670490.138032   13025 cudart_stub.cc:31] Could not find cuda '
    'drivers on your machine, GPU will not be used.',
    'E0000 00:00:1796670497.789029   13025 cuda_platform.cc:52] failed call to cuInit: '
    'INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)',
]
REAL = ['W0000 00:00:1796670497.789029   13025 op_kernel.cc:1857] OP_REQUIRES failed at '
        'save_restore_v2_ops.cc:109 : RESOURCE_EXHAUSTED: No space left on device',
        'Traceback (most recent call last):']


def test_notices_go_and_real_lines_stay():
  assert startup.filter_lines(CPU_ONLY_START + REAL, has_driver=False) == REAL


def test_a_cuinit_failure_shows_where_a_driver_is_installed():
  kept = startup.filter_lines(CPU_ONLY_START, has_driver=True)
  assert kept == [CPU_ONLY_START[-1]]


def test_the_user_can_ask_for_every_line():
  assert startup.wants_all_lines({'TF_CPP_MIN_LOG_LEVEL': '0'})
  assert not startup.wants_all_lines({'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert not startup.wants_all_lines({})


def test_a_script_that_starts_tensorflow_prints_no_start_up_notices():
  env = dict(os.environ)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  out = subprocess.run(
      [sys.executable, 'train_image_classifier.py', '--train_dir=/nonexistent/x',
       '--dataset_name=cifar10', '--dataset_dir=/nonexistent/data',
       '--model_name=lenet'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1
  lines = out.stderr.strip().splitlines()
  assert lines[-1].startswith('train_image_classifier.py: error: /nonexistent/data')
  for noise in ('absl::InitializeLog', 'oneDNN custom operations', 'cuda drivers',
                'cuInit'):
    assert noise not in out.stderr
  # Besides the error, only our own one-line device summary.
  assert len(lines) == 2 and ' device: CPU ' in lines[0], out.stderr


def test_summary_names_the_vector_unit():
  assert cpu.vector_isa({'avx2', 'avx512f', 'avx512_bf16'}) == 'AVX-512 + bf16'
  assert cpu.vector_isa({'avx2', 'fma'}) == 'AVX2'
  assert cpu.vector_isa({'avx2', 'avx512f', 'amx_bf16'}) == 'AVX-512 + AMX'
  assert cpu.summary().startswith('CPU ')
