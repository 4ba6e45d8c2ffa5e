"""The packages import only downwards, and no module imports itself round a cycle.

Layers, lowest first (docs/architecture.md): common (standard library only) <
datasets, deployment < nets < preprocessing < slimkit < the scripts, benchmarks and
tests. Deferred imports inside functions count too: they hide cycles, not remove
them.
"""

import ast
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANK = {'common': 0, 'datasets': 1, 'deployment': 1, 'nets': 2, 'preprocessing': 3,
        'slimkit': 4}


def _modules():
  for package in RANK:
    for name in sorted(os.listdir(os.path.join(ROOT, package))):
      if name.endswith('.py'):
        module = package if name == '__init__.py' else '%s.%s' % (package, name[:-3])
        yield module, os.path.join(ROOT, package, name)


def imports_of(path):
  """Every module name an import statement in the file names (deferred too)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.add(node.module)
      found.update('%s.%s' % (node.module, alias.name) for alias in node.names)
  return found


def graph():
  """{module: set of project modules it imports}."""
  modules = dict(_modules())
  out = {}
  for module, path in modules.items():
    out[module] = {name for name in imports_of(path) if name in modules}
  return out, modules


def test_every_import_points_down():
  edges, _ = graph()
  upward = []
  for module, targets in edges.items():
    package = module.split('.')[0]
    for target in targets:
      other = target.split('.')[0]
      if other != package and RANK[other] >= RANK[package]:
        upward.append('%s -> %s' % (module, target))
  assert not upward, 'imports that do not point down: %s' % ', '.join(sorted(upward))


def test_common_needs_only_the_standard_library():
  _, modules = graph()
  stdlib = sys.stdlib_module_names
  for module, path in modules.items():
    if not module.startswith('common'):
      continue
    outside = {name.split('.')[0] for name in imports_of(path)} - set(stdlib) - {
        'common'}
    assert not outside, '%s imports %s' % (module, sorted(outside))


def _cycle(edges):
  """One import cycle as a list of modules, or None."""
  state = {}

  def visit(module, path):
    state[module] = 'open'
    for target in sorted(edges[module]):
      if target == module:
        continue
      if state.get(target) == 'open':
        return path[path.index(target):] + [target]
      if target not in state:
        found = visit(target, path + [target])
        if found:
          return found
    state[module] = 'done'
    return None

  for module in sorted(edges):
    if module not in state:
      found = visit(module, [module])
      if found:
        return found
  return None


def test_no_import_cycles():
  edges, _ = graph()
  # A package's __init__ importing nothing keeps 'from nets import x' acyclic.
  assert _cycle(edges) is None, ' -> '.join(_cycle(edges))


@pytest.mark.parametrize('edges, cycle', [
    ({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}, ['a', 'b', 'c', 'a']),
    ({'a': {'b'}, 'b': set(), 'c': {'a'}}, None),
])
def test_the_cycle_finder_finds_cycles(edges, cycle):
  assert _cycle(edges) == cycle
