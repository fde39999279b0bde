"""The README's example (emcl_jax.update in a hand-written loop around a
plain-function model) runs and learns, its experiment commands run (shrunk,
in this process), and its test command is the one CI runs."""

import contextlib
import glob
import io
import os
import re
import shlex

from absl.testing import absltest
import pytest
import numpy as np

import fixtures


def readme():
  with open(os.path.join(fixtures.ROOT, 'README.md')) as f:
    return f.read()


class ReadmeTest(absltest.TestCase):

  def test_example_runs_and_learns(self):
    block = re.search(r'<!-- begin example -->\s*```python\n(.*?)```',
                      readme(), re.S).group(1)
    out = io.StringIO()
    scope = {}
    with contextlib.redirect_stdout(out):
      exec(compile(block, 'README-example', 'exec'), scope)  # pylint: disable=exec-used
    lines = out.getvalue().strip().splitlines()
    self.assertLen(lines, 2)
    # Chance is 0.25 on these 4-class tasks; the example learns each one.
    for line in lines:
      acc = float(line.rsplit(' ', 1)[1])
      self.assertGreater(acc, 0.5, line)
    self.assertEqual(int(scope['state'].step), 120)
    self.assertEqual(int(scope['state'].memory.seen), 1200)

  def test_from_arrays_example_runs_and_learns(self):
    with open(os.path.join(fixtures.ROOT, 'docs', 'api.md')) as f:
      doc = f.read()
    block = re.search(r'<!-- begin from_arrays example -->\s*```python\n'
                      r'(.*?)```', doc, re.S).group(1)
    out = io.StringIO()
    scope = {}
    with contextlib.redirect_stdout(out):
      exec(compile(block, 'from_arrays-example', 'exec'), scope)  # pylint: disable=exec-used
    results = scope['results']
    self.assertEqual(np.shape(results['accuracy_matrix']), (2, 2))
    self.assertEqual(results['data_source'], 'arrays')
    self.assertEqual(results['config']['num_tasks'], 2)
    # Two-way tasks whose classes sit 3 std apart: far above chance (0.5).
    self.assertGreater(results['acc'], 80.0)
    self.assertIn(f"ACC {results['acc']:.1f}", out.getvalue())

  @pytest.mark.slow
  def test_commands_run_shrunk(self):
    # Every `python experiments/...` command of the README's shell blocks
    # runs (on a shrunk benchmark, into a temporary folder, one seed).
    blocks = re.findall(r'```bash\n(.*?)```', readme(), re.S)
    commands = [shlex.split(c.replace('\\\n', ' '))
                for b in blocks for c in b.replace('\\\n', ' ').splitlines()
                if c.startswith('python experiments/')]
    self.assertGreaterEqual(len(commands), 3)
    self.addCleanup(os.chdir, os.getcwd())
    os.chdir(fixtures.ROOT)  # where the README's commands run: the checkout
    for command in commands:
      out = fixtures.tmp_dir(self)
      shrink = ['--config.data.num_tasks=2', '--config.data.samples_per_task=20', '--seeds=1',
                f'--workdir={out}']
      if not command[1].endswith('sweep.py'):
        shrink.append('--config.output.progress=false')
      script = re.fullmatch(r'experiments/(\w+)\.py', command[1]).group(1)
      proc = fixtures.call(script, *command[2:], *shrink)
      self.assertEqual(proc.returncode, 0, (command, proc.stderr[-2000:]))
      self.assertNotEmpty(glob.glob(os.path.join(out, '**', 'results.json'),
                                    recursive=True), command)

  def test_ci_runs_the_readme_test_command(self):
    command = re.search(r"pip install -e '\.\[test\]' && (.*)\n",
                        readme()).group(1)
    with open(os.path.join(fixtures.ROOT, '.ci', 'run')) as f:
      ci = f.read()
    self.assertIn('\n' + command + '\n', ci)


if __name__ == '__main__':
  absltest.main()
