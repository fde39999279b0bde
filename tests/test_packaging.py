"""Packaging: one version source, floors pinned as declared, console
scripts that exist, and `import emcl_jax` without image or plotting
libraries."""

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys

from absl.testing import absltest

import fixtures
import emcl_jax
from emcl_jax import version


try:
  import tomllib
except ImportError:  # Python 3.10
  tomllib = None


def _pyproject():
  with open(os.path.join(fixtures.ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def _name(requirement):
  return re.split(r'[<>=!~ \[]', requirement, maxsplit=1)[0].lower()


# The package's layers, lowest first: a module may import only from its own
# layer or those before it (emcl_jax/__init__.py).
LAYERS = ['base', 'errors', 'files', 'version', 'trees', 'clipping', 'losses',
          'patch_conv', 'models', 'data', 'equations', 'methods', 'training',
          'configs',
          'reporting', 'runner', 'launch']


def _layer(module):
  parts = module.split('.')
  return LAYERS.index(parts[1]) if len(parts) > 1 else None


class LayoutTest(absltest.TestCase):

  def test_every_import_points_downward(self):
    upward, seen = [], 0
    for folder, _, files in os.walk(os.path.join(fixtures.ROOT, 'emcl_jax')):
      for f in files:
        if not f.endswith('.py'):
          continue
        path = os.path.join(folder, f)
        module = os.path.relpath(path, fixtures.ROOT)[:-3].replace(os.sep, '.')
        module = module.removesuffix('.__init__')
        if module in ('emcl_jax', 'emcl_jax.version'):
          continue  # the top level re-exports; version imports nothing
        with open(path) as fh:
          tree = ast.parse(fh.read())
        for node in ast.walk(tree):
          names = []
          if isinstance(node, ast.ImportFrom) and node.module and (
              node.module.split('.')[0] == 'emcl_jax'):
            names = ([f'{node.module}.{a.name}' for a in node.names]
                     if node.module == 'emcl_jax' else [node.module])
          elif isinstance(node, ast.Import):
            names = [a.name for a in node.names
                     if a.name.split('.')[0] == 'emcl_jax']
          for name in names:
            seen += 1
            if _layer(name) > _layer(module):
              upward.append((module, name))
    self.assertGreater(seen, 50)
    self.assertEmpty(upward)
    # experiments/config_path.py counts callbacks against the same order.
    self.assertEqual(fixtures.study('config_path').LAYERS, tuple(LAYERS))


@absltest.skipIf(tomllib is None, 'tomllib needs Python 3.11')
class PackagingTest(absltest.TestCase):

  def test_one_version_source(self):
    project = _pyproject()
    self.assertIn('version', project['project']['dynamic'])
    self.assertEqual(project['tool']['setuptools']['dynamic']['version'],
                     {'attr': 'emcl_jax.version.__version__'})
    self.assertEqual(emcl_jax.__version__, version.__version__)
    with open(os.path.join(fixtures.ROOT, 'setup.py')) as f:
      self.assertNotIn('version=', f.read())

  def test_requirements_pin_the_declared_floors(self):
    floors = {}
    for req in _pyproject()['project']['dependencies']:
      name, floor = re.fullmatch(r'([\w.-]+)>=([\w.]+)', req).groups()
      floors[name.lower()] = floor
    pins = {}
    with open(os.path.join(fixtures.ROOT, 'requirements.txt')) as f:
      for line in f:
        line = line.split('#')[0].strip()
        if line:
          name, pin = line.split('==')
          pins[name.lower()] = pin
    self.assertEqual(pins, floors)

  def test_test_extra_has_every_third_party_test_import(self):
    extra = {_name(r) for r in
             _pyproject()['project']['optional-dependencies']['test']}
    deps = {_name(r) for r in _pyproject()['project']['dependencies']}
    imported = set()
    for name in os.listdir(os.path.join(fixtures.ROOT, 'tests')):
      if name.endswith('.py'):
        with open(os.path.join(fixtures.ROOT, 'tests', name)) as f:
          imported |= set(re.findall(r'^\s*(?:from|import) (\w+)', f.read(),
                                     re.M))
    distribution = {'absl': 'absl-py', 'PIL': 'pillow', 'tensorboardX':
                    'tensorboardx', 'orbax': 'orbax-checkpoint',
                    'tensorflow_datasets': 'tensorflow-datasets'}
    local = {n[:-3] for n in os.listdir(os.path.join(fixtures.ROOT, 'tests'))}
    third_party = {distribution.get(m, m).lower() for m in imported
                   if m not in sys.stdlib_module_names
                   and m != 'emcl_jax' and m not in local}
    self.assertEmpty(third_party - extra - deps)

  def test_console_scripts_exist(self):
    scripts = _pyproject()['project']['scripts']
    self.assertContainsSubset({'emcl-run', 'emcl-reproduce', 'emcl-sweep',
                               'emcl-summarize'}, set(scripts))
    # The studies of the paper's claims are scripts of experiments/ only.
    self.assertNotIn('emcl-bench', scripts)
    for target in scripts.values():
      # (Read, not imported: the launchers define the same absl flags.)
      module, function = target.split(':')
      path = importlib.util.find_spec(module).origin
      with open(path) as f:
        defined = {n.name for n in ast.parse(f.read()).body
                   if isinstance(n, ast.FunctionDef)}
      self.assertIn(function, defined, target)

  def test_import_pulls_in_no_image_plotting_or_cluster_library(self):
    code = ('import emcl_jax, emcl_jax.runner, emcl_jax.data, sys; '
            'import emcl_jax.launch.sweep; '
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PIL', 'matplotlib', 'tensorflow', 'tensorflow_datasets', "
            "'tensorboardX', 'submitit')))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True,
                         env=fixtures.ENV)
    self.assertEqual(out.stdout.strip(), '[]')


if __name__ == '__main__':
  absltest.main()
