"""nets/scopes.py: Slim scope paths <-> Keras layer names."""

import types

import pytest

from nets import scopes


def _var(path):
  return types.SimpleNamespace(path=path)


def test_layer_name_flattens_slim_scopes():
  assert scopes.layer_name('Mixed_3b', 'Branch_1/Conv2d_0b_3x3') == (
      'Mixed_3b.Branch_1.Conv2d_0b_3x3')
  assert scopes.layer_name('Conv2d_1a_7x7', None, 'BatchNorm') == 'Conv2d_1a_7x7.BatchNorm'


@pytest.mark.parametrize('slim', [
    'InceptionV1/Mixed_3b/Branch_1/Conv2d_0b_3x3/kernel',
    'resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/BatchNorm/gamma',
    'MobilenetV1/Conv2d_13_pointwise/kernel',
])
def test_round_trip_is_exact(slim):
  model, rest = slim.split('/', 1)
  layer, var = rest.rsplit('/', 1)
  path = scopes.layer_name(layer) + '/' + var
  assert '/' not in scopes.layer_name(layer)
  assert scopes.to_slim(model, path) == slim


@pytest.mark.parametrize('scope', ['InceptionV1/Logits', 'Logits', ' InceptionV1/Logits/ '])
def test_to_keras_accepts_with_or_without_model_scope(scope):
  assert scopes.to_keras('InceptionV1', scope) == 'Logits'


def test_in_scope_matches_whole_components_only():
  assert scopes.in_scope('Conv2d_1.depthwise/kernel', 'Conv2d_1')
  assert scopes.in_scope('Conv2d_1/kernel', 'Conv2d_1')
  assert not scopes.in_scope('Conv2d_10.depthwise/kernel', 'Conv2d_1')
  assert not scopes.in_scope('AuxLogits.Conv2d_1b_1x1/kernel', 'Logits')
  assert scopes.in_scope('anything/kernel', '')


def test_select_splits_and_reports_unmatched():
  variables = [_var(p) for p in (
      'Conv2d_1a_7x7/kernel', 'Mixed_5c.Branch_3.Conv2d_0b_1x1/kernel',
      'Logits.Conv2d_0c_1x1/kernel', 'Logits.Conv2d_0c_1x1/bias')]
  inside, outside, unmatched = scopes.select(
      variables, 'InceptionV1', 'InceptionV1/Logits,InceptionV1/Mixed_5c/Branch_3,Nope')
  assert [v.path for v in inside] == [
      'Mixed_5c.Branch_3.Conv2d_0b_1x1/kernel', 'Logits.Conv2d_0c_1x1/kernel',
      'Logits.Conv2d_0c_1x1/bias']
  assert [v.path for v in outside] == ['Conv2d_1a_7x7/kernel']
  assert unmatched == ['Nope']


def test_parse_scopes_ignores_blanks():
  assert scopes.parse_scopes(None) == []
  assert scopes.parse_scopes(' a, b,,c ') == ['a', 'b', 'c']
