"""The README's example (emcl_jax.update in a hand-written loop around a
plain-function model) runs, learns, and the README's commands are the ones
CI runs."""

import contextlib
import io
import os
import re

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
  with open(os.path.join(ROOT, 'README.md')) as f:
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

  def test_ci_runs_the_readme_test_command(self):
    command = re.search(r"pip install -e '\.\[test\]' && (.*)\n",
                        readme()).group(1)
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
      ci = f.read()
    self.assertIn('\n' + command + '\n', ci)


if __name__ == '__main__':
  absltest.main()
