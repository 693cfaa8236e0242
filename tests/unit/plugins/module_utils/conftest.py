# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures: the real ``nix-instantiate`` (``--store dummy://``: no store, no daemon)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

NIX_INSTANTIATE = 'nix-instantiate'


def run_argv(argv, data=None):
    """The ``run(argv, data=...) -> (rc, stdout, stderr)`` callable the module_utils expect."""
    proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


class Nix(object):
    """Parse and evaluate Nix files with the real nix-instantiate, in a scratch directory."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.calls = 0

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(text)
        return path

    def _run(self, argv):
        self.calls += 1
        return run_argv(argv)

    def parse_error(self, path):
        rc, stdout, stderr = self._run([NIX_INSTANTIATE, '--store', 'dummy://', '--parse', path])
        return None if rc == 0 else stderr or stdout

    def eval_json(self, path):
        """The JSON value of the file; fails the test with nix's message if it does not eval."""
        rc, stdout, stderr = self._run([NIX_INSTANTIATE, '--store', 'dummy://', '--eval',
                                        '--strict', '--json', path])
        assert rc == 0, stderr
        return json.loads(stdout)


@pytest.fixture
def nix(tmp_path):
    assert shutil.which(NIX_INSTANTIATE), 'these tests need nix-instantiate on PATH (nix-bin)'
    return Nix(str(tmp_path))


@pytest.fixture
def run():
    return run_argv
