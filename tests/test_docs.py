"""The documentation names only things that exist (no training).

README.md and docs/*.md are read as text and checked against the code:

  commands   every `python experiments/X.py ...` or `emcl-X ...` command,
             in a code block or an inline code span, uses flags of that
             script (as its `--help` lists them; `--noFLAG` for a bool),
             `--config.PATH=VALUE` with a PATH and VALUE the run config
             takes, known datasets and methods, and sweep grids whose
             settings all build; any other `--flag` in the docs is a flag
             of some script, and any `--dataset=` or `--method=` value
             exists;
  scripts    every console script `emcl-*` is one of pyproject.toml's;
  names      every dotted `emcl_jax.x.y` in backticks imports, every
             function of api.md's module table exists, every repository
             path in backticks exists;
  api.md     its `summary` keys are those of `reporting.metrics.summary`,
             its EMCLConfig table has the class's defaults, its `h_norm`
             and `meta_lr` modes exist;
  links      every relative link reaches a file, and a heading of it when
             it names one.
"""

import functools
import glob
import importlib
import importlib.util
import os
import re
import shlex
import sys

import numpy as np
import pytest

import fixtures
from emcl_jax import configs
from emcl_jax.launch import grids as sweeps
from emcl_jax.configs import schema
from emcl_jax.equations import importance
from emcl_jax.equations import transforms
from emcl_jax.methods import METHODS
from emcl_jax.methods.emcl import EMCLConfig
from emcl_jax.reporting import metrics

SCRIPTS = ('run', 'sweep', 'reproduce', 'bench', 'summarize', 'cost',
           'grid_cost', 'front', 'selection', 'eq8_readings', 'meta_share',
           'config_path')
# absl's own flags, which `--help` does not list.
ABSL_FLAGS = {'help', 'helpfull', 'helpshort', 'helpxml', 'flagfile'}
# Flags of other programs the docs quote: pytest's (`--dist loadscope`).
OTHER_FLAGS = {'dist', 'nodes', 'ntasks',  # pip's, srun's
               'array', 'gres', 'time'}  # sbatch's
SHELL_OPERATORS = {'|', '||', '&&', ';', '>', '>>', '2>', '&'}
DEFAULT_DATASET = 'mnist_permutations'


def doc_paths():
  return [os.path.join(fixtures.ROOT, 'README.md')] + sorted(
      glob.glob(os.path.join(fixtures.ROOT, 'docs', '*.md')))


@functools.lru_cache(maxsize=None)
def read(path):
  with open(path) as f:
    return f.read()


def rel(path):
  return os.path.relpath(path, fixtures.ROOT)


FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
INLINE = re.compile(r'(?<!`)`([^`\n]+(?:\n[^`\n]+)*?)`(?!`)')


def code_blocks(text):
  """The fenced code blocks of a Markdown text."""
  return FENCE.findall(text)


def prose(text):
  """The text outside fenced code blocks."""
  return FENCE.sub('', text)


def inline_spans(text):
  """The inline code spans of the prose, each on one line."""
  return [' '.join(s.split()) for s in INLINE.findall(prose(text))]


def block_lines(block):
  """A code block's lines, with backslash continuations joined."""
  return block.replace('\\\n', ' ').splitlines()


def is_placeholder(value):
  """DIR, FILE, M, S, B: a value the reader fills in."""
  return bool(re.fullmatch(r'[A-Z][A-Z_0-9]*', value)) or '{' in value


# --- the scripts: their flags and settings ----------------------------------


@functools.lru_cache(maxsize=None)
def script_help():
  """{script: its --help text}, each script's main called in this process
  (tests/test_cli.py runs `--help` of the scripts' files)."""
  out = {}
  for script in SCRIPTS:
    res = fixtures.call(script, '--help')
    assert res.returncode == 0, (script, res.stderr[-2000:])
    out[script] = res.stdout
  return out


@functools.lru_cache(maxsize=None)
def script_flags():
  """{script: {flag name: is it a bool}} from the `--name:` lines of
  `--help` (a bool shows a default of True or False)."""
  out = {}
  for script, text in script_help().items():
    found = re.findall(r'^  --(\w+): .*?\n\s+\(default: (.*?)\)$', text,
                       re.M | re.S)
    flags = {}
    for name, default in found:
      flags[name] = default in ('True', 'False')
    assert flags, f'no flags parsed from {script} --help'
    out[script] = flags
  return out


@functools.lru_cache(maxsize=None)
def setting_paths(dataset, method):
  """The config paths of `method` on `dataset` (`schema.settings`)."""
  config = configs.get_config(dataset, method)
  return frozenset(s.path for s in schema.settings(config))


@functools.lru_cache(maxsize=None)
def all_setting_paths():
  return frozenset().union(*(setting_paths(DEFAULT_DATASET, m)
                             for m in METHODS))


# --- the commands of the docs -----------------------------------------------


def commands():
  """(doc, line, script, args) of every command line of a script."""
  out = []
  for path in doc_paths():
    text = read(path)
    lines = [line for block in code_blocks(text)
             for line in block_lines(block)]
    lines += inline_spans(text)
    for line in lines:
      try:
        tokens = shlex.split(line, comments=True)
      except ValueError:
        tokens = line.split()
      for i, token in enumerate(tokens):
        script = re.fullmatch(r'(?:\S*/)?experiments/(\w+)\.py', token)
        console = re.fullmatch(r'emcl-(\w+)', token)
        python = i > 0 and re.fullmatch(r'python[\d.]*', tokens[i - 1])
        if (script and python) or (console and i + 1 < len(tokens)):
          args = []
          for arg in tokens[i + 1:]:
            if arg in SHELL_OPERATORS:
              break
            args.append(arg)
          name = (script or console).group(1)
          out.append((rel(path), line, name, args, bool(console)))
          break
  return out


def parse_args(script, args):
  """{flag: value} and the problems of one command's arguments."""
  flags = script_flags().get(script, {})
  given, problems, i = {}, [], 0
  while i < len(args):
    arg = args[i]
    i += 1
    if not arg.startswith('--'):
      continue  # a value of the previous flag, or an argument
    name, sep, value = arg[2:].partition('=')
    if name.startswith('config.'):
      given.setdefault('config.', []).append((name[len('config.'):], value))
      continue
    if name in ABSL_FLAGS:
      continue
    if name in flags:
      if not sep and not flags[name] and i < len(args):
        value = args[i]  # --config FILE
        i += 1
      given[name] = value
    elif name.startswith('no') and flags.get(name[2:]):
      given[name[2:]] = 'false'
    else:
      problems.append(f'--{name} is not a flag of {script}.py')
  return given, problems


def check_values(script, given):
  """The problems of a command's datasets, methods and settings."""
  problems = []
  datasets = [v for v in (given.get('dataset') or given.get('datasets') or
                          DEFAULT_DATASET).split(',')]
  for d in datasets:
    if not is_placeholder(d) and d not in configs.BENCHMARKS:
      problems.append(f'unknown dataset {d!r}')
  dataset = next((d for d in datasets if d in configs.BENCHMARKS),
                 DEFAULT_DATASET)
  methods = []
  for flag in ('method', 'methods', 'baseline'):
    if flag in given and not (script == 'bench' and flag == 'methods'):
      methods += given[flag].split(',')
  if script == 'bench' and 'methods' in given:
    methods += [m for m in given['methods'].split(',') if m != 'all']
  for m in methods:
    if not is_placeholder(m) and m not in METHODS:
      problems.append(f'unknown method {m!r}')
  known = [m for m in methods if m in METHODS] or ['emcl']
  for path, value in given.get('config.', []):
    if is_placeholder(path.rsplit('.', 1)[-1]):
      continue
    for m in known:
      if path not in setting_paths(dataset, m):
        problems.append(f'--config.{path} is not a setting of {m} '
                        f'(--print_config lists them)')
      elif value and not is_placeholder(value):
        try:
          schema.replace(configs.get_config(dataset, m), path, value)
        except ValueError as e:
          problems.append(f'--config.{path}={value}: {e}')
  if script == 'sweep':
    problems += check_grid(dataset, given)
  return problems


def check_grid(dataset, given):
  """Every setting of a sweep command's grid builds (`sweeps.expand`)."""
  try:
    if 'grid_file' in given:
      settings = sweeps.load_grid_file(os.path.join(fixtures.ROOT,
                                                    given['grid_file']))
    elif 'grid' in given:
      settings = sweeps.parse_grid(given['grid'])
    else:
      return ['a sweep needs --grid or --grid_file']
    fixed = {path: values[0] for path, values in
             sweeps.parse_axes(given.get('set') or '')}
    build = lambda m, values: configs.resolve(  # noqa: E731
        configs.get_config(dataset, m, values))
    sweeps.expand(settings, fixed, given.get('method', 'emcl'), build)
  except ValueError as e:
    return [f'grid: {e}']
  return []


def test_commands_use_flags_that_exist():
  found = commands()
  assert len(found) >= 20, 'the docs show fewer commands than expected'
  assert {s for _, _, s, _, _ in found} >= {'run', 'sweep', 'reproduce',
                                            'bench', 'summarize'}
  problems = []
  for doc, line, script, args, console in found:
    if script not in SCRIPTS:
      name = f'emcl-{script}' if console else f'experiments/{script}.py'
      problems.append(f'{doc}: no script {name}: {line}')
      continue
    given, bad = parse_args(script, args)
    bad += check_values(script, given)
    problems += [f'{doc}: {p}: {line}' for p in bad]
  assert not problems, '\n'.join(problems)


def test_every_flag_named_is_a_flag():
  """A `--name` anywhere (prose, tables, code) is some script's flag."""
  known = set(ABSL_FLAGS) | OTHER_FLAGS
  for flags in script_flags().values():
    known |= set(flags) | {f'no{f}' for f, is_bool in flags.items()
                           if is_bool}
  paths = all_setting_paths()
  problems = []
  for path in doc_paths():
    text = re.sub(r'\]\([^)]*\)', '](link)', read(path))
    for match in re.finditer(r'(?<![\w-])--([A-Za-z_][\w.]*)', text):
      name = match.group(1).rstrip('.')
      if name.startswith('xla_') or name in known:
        continue
      if name.startswith('config.'):
        setting = name[len('config.'):]
        if setting in paths or is_placeholder(setting.rsplit('.', 1)[-1]):
          continue
      line = text.count('\n', 0, match.start()) + 1
      problems.append(f'{rel(path)}:{line}: --{name}')
  assert not problems, ('not a flag of any script:\n' + '\n'.join(problems))


def test_every_dataset_and_method_named_exists():
  """`--dataset=`, `--method=` and their lists anywhere name real ones."""
  known = {'dataset': set(configs.BENCHMARKS),
           'method': set(METHODS) | {'all', 'floor'}}
  problems = []
  for path in doc_paths():
    text = read(path)
    for match in re.finditer(r'--(dataset|method)s?=([\w,]+)', text):
      kind, values = match.groups()
      for value in values.split(','):
        if value and not is_placeholder(value) and value not in known[kind]:
          line = text.count('\n', 0, match.start()) + 1
          problems.append(f'{rel(path)}:{line}: {kind} {value!r}')
  assert not problems, 'no such dataset or method:\n' + '\n'.join(problems)


# --- console scripts ----------------------------------------------------------


def console_scripts():
  text = read(os.path.join(fixtures.ROOT, 'pyproject.toml'))
  section = re.search(r'^\[project\.scripts\]\n(.*?)(?=^\[)', text,
                      re.S | re.M).group(1)
  return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', section, re.M))


def test_console_scripts_exist():
  scripts = console_scripts()
  assert set(scripts) >= {'emcl-run', 'emcl-sweep', 'emcl-reproduce',
                          'emcl-summarize'}
  for target in scripts.values():
    # Read, not imported: the launch modules share absl's flags.
    module, function = target.split(':')
    source = read(importlib.util.find_spec(module).origin)
    assert re.search(rf'^def {function}\(', source, re.M), target
  problems = []
  for path in doc_paths():
    for name in re.findall(r'(?<![\w#/-])emcl-[a-z_]+\b', read(path)):
      if name not in scripts:
        problems.append(f'{rel(path)}: {name}')
  assert not problems, ('not a console script of pyproject.toml: '
                        + ', '.join(problems))
  readme = read(os.path.join(fixtures.ROOT, 'README.md'))
  for name in scripts:
    assert name in readme, f'README.md does not mention {name}'


def test_scripts_of_commands_exist():
  scripts = console_scripts()
  for doc, line, script, _, console in commands():
    if console:
      assert f'emcl-{script}' in scripts, (doc, line)
    else:
      assert os.path.exists(os.path.join(fixtures.ROOT, 'experiments',
                                         f'{script}.py')), (doc, line)


# --- names and paths ----------------------------------------------------------


def resolve_name(dotted):
  """The object `emcl_jax.a.b` names, by import and getattr."""
  parts = dotted.split('.')
  obj = importlib.import_module(parts[0])
  for i, part in enumerate(parts[1:], 1):
    try:
      obj = getattr(obj, part)
    except AttributeError:
      obj = importlib.import_module('.'.join(parts[:i + 1]))
  return obj


def test_dotted_names_resolve():
  problems, seen = [], 0
  for path in doc_paths():
    for span in inline_spans(read(path)):
      for dotted in re.findall(r'\bemcl_jax(?:\.[A-Za-z_]\w*)+', span):
        seen += 1
        try:
          resolve_name(dotted)
        except (ImportError, AttributeError) as e:
          problems.append(f'{rel(path)}: `{dotted}` ({e})')
  assert seen >= 20
  assert not problems, '\n'.join(problems)


def test_api_module_table_functions_exist():
  """In api.md's table of modules, each function listed is the module's."""
  rows = re.findall(r'^\| `(emcl_jax\.\w+)` [^|]*\| (.*) \|$',
                    read(os.path.join(fixtures.ROOT, 'docs', 'api.md')), re.M)
  assert len(rows) >= 6
  problems = []
  for module, cell in rows:
    obj = resolve_name(module)
    for span in INLINE.findall(cell):
      name = re.match(r'([A-Za-z_]\w*)(\(|$)', span)
      if name and not hasattr(obj, name.group(1)):
        problems.append(f'{module}.{name.group(1)}')
  assert not problems, 'api.md names missing functions: ' + ', '.join(
      problems)


def test_repository_paths_exist():
  problems = []
  for path in doc_paths():
    for span in inline_spans(read(path)):
      for p in re.findall(r'(?<![\w/.])((?:emcl_jax|experiments|tests|docs)'
                          r'/[\w/.-]*)', span):
        p = p.rstrip('.')
        if not os.path.exists(os.path.join(fixtures.ROOT, p)):
          problems.append(f'{rel(path)}: {p}')
  assert not problems, 'no such file: ' + ', '.join(problems)


# --- api.md against the code --------------------------------------------------


def api():
  return read(os.path.join(fixtures.ROOT, 'docs', 'api.md'))


def test_summary_keys_are_the_code_s():
  cell = re.search(r'`summary\(.*?(?=\||$)', api(), re.M | re.S)
  assert cell, 'api.md documents no summary(...)'
  documented = set(re.findall(r"'(\w+)'", cell.group(0)))
  assert documented, cell.group(0)
  r = np.array([[0.9, 0.1, 0.2], [0.8, 0.9, 0.1], [0.7, 0.8, 0.9]])
  b = np.array([0.1, 0.1, 0.1])
  actual = set(metrics.summary(r, b))
  assert documented <= actual, f'not keys of summary: {documented - actual}'
  assert actual <= documented, f'undocumented keys: {actual - documented}'
  assert 'fwt' not in metrics.summary(r)


def emcl_config_rows():
  """{field: documented default} of api.md's EMCLConfig table."""
  table = re.search(r'\| field \| default \| meaning \|\n\| --- .*?\n'
                    r'((?:\|.*\n)+)', api()).group(1)
  rows = {}
  for line in table.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    names = re.findall(r'`(\w+)`', cells[0])
    values = [v.strip() for v in cells[1].split(',')]
    assert len(names) == len(values), line
    rows.update(zip(names, values))
  return rows


def test_emcl_config_table_has_the_class_defaults():
  rows = emcl_config_rows()
  defaults = EMCLConfig()._asdict()
  assert set(rows) == set(defaults), set(rows) ^ set(defaults)
  for field, text in rows.items():
    value = defaults[field]
    if isinstance(value, str):
      assert text == f"`'{value}'`", (field, text, value)
    else:
      assert float(text) == value, (field, text, value)


def test_documented_modes_exist():
  def modes(field):
    line = re.search(rf'^\| `{field}` \|.*$', api(), re.M).group(0)
    meaning = line.split('|')[3]
    return set(re.findall(r"`'(\w+)'`", meaning))
  assert modes('h_norm') == set(importance.H_NORMS)
  assert modes('meta_lr') == set(transforms.META_LR_MODES)


# --- links --------------------------------------------------------------------


def slug(heading):
  """GitHub's anchor of a Markdown heading."""
  text = heading.strip().lower()
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


@functools.lru_cache(maxsize=None)
def anchors(path):
  return {slug(h) for h in re.findall(r'^#+ (.*)$', prose(read(path)),
                                      re.M)}


def test_links_reach_files_and_headings():
  problems = []
  for path in doc_paths():
    for target in re.findall(r'\]\(([^)\s]+)\)', prose(read(path))):
      if re.match(r'[a-z]+://', target):
        continue
      file, _, anchor = target.partition('#')
      dest = (os.path.normpath(os.path.join(os.path.dirname(path), file))
              if file else path)
      if not os.path.exists(dest):
        problems.append(f'{rel(path)}: {target} (no file)')
      elif anchor and dest.endswith('.md') and anchor not in anchors(dest):
        problems.append(f'{rel(path)}: {target} (no heading)')
  assert not problems, '\n'.join(problems)


def test_readme_stays_short():
  assert len(read(os.path.join(fixtures.ROOT, 'README.md')).splitlines()) < 150


RESULTS_PAGES = ('benchmarks.md', 'reproducibility.md')


@pytest.mark.parametrize('page', RESULTS_PAGES)
def test_every_results_table_names_its_command(page):
  """Each results table of docs/benchmarks.md and docs/reproducibility.md
  has, earlier in its section, the command that makes it (a code block or
  an inline span running a script); `test_commands_use_flags_that_exist`
  checks those commands."""
  text = read(os.path.join(fixtures.ROOT, 'docs', page))
  command = re.compile(r'(python\S* \S*experiments/\w+\.py|emcl-\w+ )')
  missing = []
  for section in re.split(r'^## ', text, flags=re.M)[1:]:
    title = f'{page}, {section.splitlines()[0]}'
    for table in re.finditer(r'(?:^\|.*\n)+', section, flags=re.M):
      before = section[:table.start()]
      if not command.search(before):
        missing.append(f'{title}: the table at line '
                       f'{before.count(chr(10)) + 1} of its section')
  assert not missing, ('tables without a command:\n' + '\n'.join(missing))


if __name__ == '__main__':
  sys.exit(pytest.main([__file__, '-q']))
