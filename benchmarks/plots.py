"""Accuracy curves of the table benchmarks, as a PNG beside their tables.

    plots.write_curves(output_dir, 'time_to_accuracy', [
        ('custom_cnn', [(minutes, epochs, top1_percent), ...]),   # one line per run
    ], title='...')

Two panels side by side share the top-1 axis: against training minutes (left) and
against epochs (right). A run of one point (a final result only) is drawn as a
marker. matplotlib is a development dependency (requirements-dev.txt), imported only
here and only when a plot is drawn, with the Agg canvas (no display, no pyplot
state); without it the benchmark still writes its tables and says the PNG is missing.
"""

import os

from common import errors


class MissingMatplotlib(errors.UserError):
  """matplotlib is not installed."""


def accuracy_curves(path, runs, title=None):
  """Writes path (PNG): top-1 % against minutes and epochs, one line per run.

  runs: [(label, [(minutes, epochs, top1 %), ...])], points in training order; a
    run without points is left out.
  Returns the number of lines drawn in each panel, [minutes, epochs].
  """
  try:
    from matplotlib.backends import backend_agg  # pylint: disable=g-import-not-at-top
    from matplotlib import figure  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingMatplotlib('no %s: matplotlib is not installed (%s); run python3 -m '
                            'pip install -r requirements-dev.txt' % (path, e)) from None
  fig = figure.Figure(figsize=(11, 4.2), dpi=100, layout='constrained')
  backend_agg.FigureCanvasAgg(fig)
  by_minutes, by_epochs = fig.subplots(1, 2, sharey=True)
  for label, points in runs:
    if not points:
      continue
    minutes, epochs, top1 = zip(*points)
    # A lone point needs a marker big enough to see; a curve's marks its evaluations.
    size = 7 if len(points) == 1 else 3
    for axes, x in ((by_minutes, minutes), (by_epochs, epochs)):
      axes.plot(x, top1, marker='o', markersize=size, label=label)
  by_minutes.set_xlabel('training minutes')
  by_epochs.set_xlabel('epochs')
  by_minutes.set_ylabel('top-1 %')
  for axes in (by_minutes, by_epochs):
    axes.grid(True, alpha=0.3)
  if by_epochs.get_lines():
    by_epochs.legend(fontsize='small', loc='lower right')
  if title:
    fig.suptitle(title)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, format='png')
  return [len(by_minutes.get_lines()), len(by_epochs.get_lines())]


def write_curves(out_dir, name, runs, title=None):
  """<out_dir>/<name>.png by accuracy_curves, and a line saying where it went.

  Returns the path, or None (and a line saying why) without matplotlib: the
  tables a long run measured are already written and stay the result.
  """
  path = os.path.join(out_dir, name + '.png')
  try:
    accuracy_curves(path, runs, title)
  except MissingMatplotlib as e:
    print(e)
    return None
  print('wrote %s' % path)
  return path
