"""deployment.cpu: oneDNN's kernels switched on for AVX2 CPUs, before TF's import.

TensorFlow leaves oneDNN off on CPUs without VNNI/BF16/AMX, and its Eigen conv
input gradient is then many times slower (benchmarks/conv_grad_bench.py
--onednn=both); the scripts switch it on there unless the user chose.
"""

import os
import subprocess
import sys

import pytest

from deployment import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZEN3 = {'sse4_2', 'avx', 'avx2', 'fma', 'bmi2'}
ZEN5 = ZEN3 | {'avx512f', 'avx512_vnni', 'avx512_bf16'}
SAPPHIRE_RAPIDS = ZEN5 | {'amx_tile', 'amx_bf16', 'amx_int8', 'avx_vnni'}


def configure(flags, environ=None, system='Linux', machine='x86_64'):
  environ = {} if environ is None else environ
  decision = cpu.configure_onednn(environ, flags, system, machine)
  return environ.get('TF_ENABLE_ONEDNN_OPTS'), decision


def test_avx2_only_cpu_gets_onednn_switched_on():
  assert not cpu.tf_default_onednn(ZEN3)  # what TensorFlow would do
  value, decision = configure(ZEN3)
  assert value == '1' and 'AVX2' in decision and 'TF_ENABLE_ONEDNN_OPTS=0' in decision


@pytest.mark.parametrize('flags', [ZEN5, SAPPHIRE_RAPIDS])
def test_cpus_where_tensorflow_turns_it_on_are_left_alone(flags):
  value, decision = configure(flags)
  assert value is None and "TensorFlow's default" in decision


def test_the_users_setting_wins():
  value, decision = configure(ZEN3, {'TF_ENABLE_ONEDNN_OPTS': '0'})
  assert value == '0' and 'set by the user' in decision


@pytest.mark.parametrize('flags,system,machine', [
    ({'sse4_2', 'avx'}, 'Linux', 'x86_64'),  # no AVX2: Eigen as TF chooses
    (ZEN3, 'Darwin', 'x86_64'),
    (ZEN3, 'Linux', 'aarch64')])
def test_other_cpus_and_systems_keep_tensorflows_default(flags, system, machine):
  assert configure(flags, system=system, machine=machine)[0] is None


def test_avx2_only_drops_avx512_amx_and_vnni():
  assert cpu.avx2_only(SAPPHIRE_RAPIDS) == ZEN3
  assert cpu.want_onednn(cpu.avx2_only(SAPPHIRE_RAPIDS))
  assert not cpu.tf_default_onednn(cpu.avx2_only(SAPPHIRE_RAPIDS))


@pytest.mark.slow
@pytest.mark.parametrize('value,enabled', [('0', False), ('1', True)])
def test_scripts_prologue_runs_before_tensorflow_and_the_setting_holds(value, enabled):
  # A fresh interpreter, as a script starts: slimkit.cli first, then TensorFlow.
  code = ('from slimkit import cli\n'
          'import tensorflow\n'
          'from deployment import cpu\n'
          'print(cpu.decision)\n'
          'print(cpu.onednn_enabled())\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                       text=True, check=True,
                       env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value))
  decision, state = out.stdout.strip().splitlines()[-2:]
  assert 'set by the user' in decision and state == str(enabled)
