"""--help and --helpshort of the scripts: their own flags, grouped, without TensorFlow.

absl lists under --help only the flags its main module defines; the scripts' flags
are defined in slimkit/flags.py, so it listed none, and --helpfull mixes in absl's
and TensorFlow's own. help_text() lists a script's flags (slimkit/flags.py's and
the script's) under the group each carries (`flag.help_group`, TF-Slim's groups;
'General' when none): TF-Slim's flags in definition order, then the '(new)' ones.
--helpfull stays absl's.
"""

import re
import sys
import textwrap

ASKS = ('-h', '-?', '--help', '-help', '--helpshort', '-helpshort')
ORDER = ('General', 'Optimization', 'Learning rate', 'Dataset', 'Fine-tuning',
         'Augmentation (new)', 'Distillation (new)')
WIDTH = 80
_NEW = re.compile(r'(<[^>]*>: )?\(new\)')  # an enum's help starts with its choices


def asked(argv):
  """True if the command line (argv[0] is the script) asks for --help."""
  for arg in argv[1:]:
    if arg == '--':
      return False
    if arg in ASKS:
      return True
  return False


def script_flags(flag_values, main_module=None):
  """The flags of the script: those slimkit/flags.py defined, then its own."""
  main_module = main_module or sys.argv[0]
  out = []
  for module in ('slimkit.flags', main_module):
    for flag in flag_values.get_key_flags_for_module(module):
      if flag not in out:
        out.append(flag)
  return out


def describe(flag):
  """absl's layout of one flag: '--name: help', then its default."""
  name = ('--[no]%s' if flag.boolean else '--%s') % flag.name
  lines = textwrap.wrap('%s: %s' % (name, flag.help), WIDTH, initial_indent='  ',
                        subsequent_indent='    ', break_on_hyphens=False,
                        break_long_words=False)
  if flag.default is not None:
    lines.append('    (default: %s)' % flag.default_as_str)
  return lines


def help_text(flag_values, doc=None, main_module=None):
  """The script's docstring, then its flags by group."""
  if doc is None:
    doc = getattr(sys.modules.get('__main__'), '__doc__', None) or ''
  groups = {}
  for flag in script_flags(flag_values, main_module):
    groups.setdefault(getattr(flag, 'help_group', 'General'), []).append(flag)
  rank = {name: i for i, name in enumerate(ORDER)}
  lines = [doc.strip(), ''] if doc.strip() else []
  for group in sorted(groups, key=lambda g: rank.get(g, len(ORDER))):
    lines.append('%s:' % group)
    for flag in sorted(groups[group], key=lambda f: bool(_NEW.match(f.help))):
      lines.extend(describe(flag))
    lines.append('')
  lines.append('--helpfull also lists the flags of absl and TensorFlow.')
  return '\n'.join(lines)
