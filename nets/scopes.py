"""TF-Slim scope paths <-> Keras 3 layer names.

Keras 3 forbids '/' in layer names, so a Slim scope such as
'InceptionV1/Mixed_3b/Branch_1/Conv2d_0b_3x3' lives in model 'InceptionV1' as the
layer 'Mixed_3b.Branch_1.Conv2d_0b_3x3'. '.' never occurs in a Slim scope, so the
mapping is exact both ways and flags like --checkpoint_exclude_scopes read as in
TF-Slim's docs.
"""

SEP = '.'


def layer_name(*scopes):
  """Joins Slim scope parts into one Keras layer name.

  layer_name('Mixed_3b', 'Branch_1/Conv2d_0b_3x3') -> 'Mixed_3b.Branch_1.Conv2d_0b_3x3'
  """
  parts = []
  for scope in scopes:
    if scope:
      parts.extend(p for p in str(scope).split('/') if p)
  return SEP.join(parts)


def to_slim(model_scope, path):
  """Keras variable path or layer name -> Slim path under the model scope.

  to_slim('InceptionV1', 'Mixed_3b.Branch_1.Conv2d_0b_3x3/kernel')
    -> 'InceptionV1/Mixed_3b/Branch_1/Conv2d_0b_3x3/kernel'
  """
  slim = path.replace(SEP, '/')
  return '%s/%s' % (model_scope, slim) if model_scope else slim


def to_keras(model_scope, scope):
  """Slim scope (with or without the model scope) -> flat Keras name prefix."""
  scope = scope.strip().strip('/')
  if model_scope and (scope == model_scope or scope.startswith(model_scope + '/')):
    scope = scope[len(model_scope):].strip('/')
  return layer_name(scope)


def parse_scopes(text):
  """'a, b,,c' -> ['a', 'b', 'c'] (the comma lists of the Slim flags)."""
  if not text:
    return []
  return [s.strip() for s in str(text).split(',') if s.strip()]


def in_scope(path, prefix):
  """True if a flat name or variable path lies under a flat scope prefix.

  Matches whole components only: 'Conv2d_1' covers 'Conv2d_1.depthwise' and
  'Conv2d_1/kernel' but not 'Conv2d_10.depthwise'. An empty prefix covers all.
  """
  if not prefix:
    return True
  if path == prefix:
    return True
  return path.startswith(prefix + SEP) or path.startswith(prefix + '/')


def select(variables, model_scope, scopes):
  """Splits variables into (in any of the scopes, not in any), keeping order.

  Returns also the scopes that matched nothing, so callers can name them in an error.
  """
  prefixes = [(s, to_keras(model_scope, s)) for s in parse_scopes(scopes)]
  inside, outside, used = [], [], set()
  for v in variables:
    hit = [s for s, p in prefixes if in_scope(v.path, p)]
    used.update(hit)
    (inside if hit else outside).append(v)
  unmatched = [s for s, _ in prefixes if s not in used]
  return inside, outside, unmatched
