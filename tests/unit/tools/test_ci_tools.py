"""Tests of the CI plumbing in tools/ (run by pytest and by ansible-test units)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[3] / 'tools'


def load_tool(name):
    """Import an extension-less script from tools/ as a module."""
    loader = importlib.machinery.SourceFileLoader(name.replace('-', '_'), str(TOOLS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def write(path, text=''):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- check-recap ----------------------------------------------------------------------------

RECAP = """\
PLAY [x] ***
TASK [y] ***
PLAY RECAP *********************************************************************
host1                      : ok=3    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
host2                      : ok=3    changed=2    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
"""


def test_recap_counts_reads_every_host():
    check_recap = load_tool('check-recap')
    hosts = check_recap.recap_counts(RECAP.splitlines())
    assert hosts['host1']['changed'] == 0
    assert hosts['host2'] == {'ok': 3, 'changed': 2, 'unreachable': 0, 'failed': 1,
                              'skipped': 0, 'rescued': 0, 'ignored': 0}


def test_recap_problems_flag_failures_and_changes_only_when_asked():
    check_recap = load_tool('check-recap')
    hosts = check_recap.recap_counts(RECAP.splitlines())
    assert check_recap.problems(hosts, require_unchanged=False) == ['host2: failed=1']
    assert check_recap.problems(hosts, require_unchanged=True) == [
        'host2: failed=1', 'host2: changed=2 (expected 0)']


def test_recap_missing_is_a_failure(tmp_path):
    log = write(tmp_path / 'run.log', 'ERROR! the playbook could not be found\n')
    result = subprocess.run([sys.executable, str(TOOLS / 'check-recap'), '--unchanged', str(log)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert 'no PLAY RECAP found' in result.stdout


def test_recap_uses_the_last_play_recap():
    check_recap = load_tool('check-recap')
    second = RECAP.replace('changed=2', 'changed=0').replace('failed=1', 'failed=0')
    hosts = check_recap.recap_counts((RECAP + second).splitlines())
    assert check_recap.problems(hosts, require_unchanged=True) == []


# ---- sync-tree ------------------------------------------------------------------------------

def git(repo, *args):
    subprocess.run(['git', '-C', str(repo)] + list(args), check=True, capture_output=True)


@pytest.fixture
def source_repo(tmp_path):
    repo = tmp_path / 'src'
    write(repo / 'galaxy.yml', 'name: x\n')
    write(repo / 'plugins' / 'modules' / 'm.py', 'print(1)\n')
    write(repo / '.gitignore', '.lab*/\nignored.txt\n')
    write(repo / 'ignored.txt', 'no\n')
    write(repo / '.lab4' / 'state', 'no\n')
    os.symlink('galaxy.yml', repo / 'link.yml')
    git(repo, 'init', '-q')
    git(repo, 'add', 'galaxy.yml', '.gitignore')
    return repo


def relative_files(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob('*') if not path.is_dir())


def test_sync_copies_tracked_and_untracked_but_not_ignored(source_repo, tmp_path):
    sync_tree = load_tool('sync-tree')
    dest = tmp_path / 'dest'
    sync_tree.sync(str(source_repo), str(dest))
    assert relative_files(dest) == ['.gitignore', 'galaxy.yml', 'link.yml', 'plugins/modules/m.py']
    assert os.readlink(dest / 'link.yml') == 'galaxy.yml'


def test_sync_updates_changed_and_removes_stale_files_but_keeps_tests_output(source_repo, tmp_path):
    sync_tree = load_tool('sync-tree')
    dest = tmp_path / 'dest'
    sync_tree.sync(str(source_repo), str(dest))
    write(dest / 'stale' / 'old.py', 'x\n')
    write(dest / 'tests' / 'output' / 'junit.xml', '<x/>\n')
    write(source_repo / 'plugins' / 'modules' / 'm.py', 'print(2)\n')
    (source_repo / 'galaxy.yml').chmod(0o755)
    sync_tree.sync(str(source_repo), str(dest))
    assert (dest / 'plugins' / 'modules' / 'm.py').read_text() == 'print(2)\n'
    assert os.access(dest / 'galaxy.yml', os.X_OK)
    assert not (dest / 'stale').exists()
    assert (dest / 'tests' / 'output' / 'junit.xml').exists()


def test_sync_without_git_skips_local_state_dirs(tmp_path):
    sync_tree = load_tool('sync-tree')
    source = tmp_path / 'plain'
    write(source / 'meta' / 'runtime.yml', '---\n')
    for local in ('.venv/bin/python', '.build/x', '.lab/y', '.lab2/z', '.git/HEAD'):
        write(source / local, 'x\n')
    dest = tmp_path / 'dest'
    sync_tree.sync(str(source), str(dest))
    assert relative_files(dest) == ['meta/runtime.yml']


# ---- install-system-deps --------------------------------------------------------------------

def test_bindep_selection_keeps_debian_packages_only(tmp_path):
    bindep = write(tmp_path / 'bindep.txt', (
        '# comment\n'
        'plain\n'
        'rpm-only [platform:rpm]\n'
        'not-debian [!platform:dpkg]\n'
        'versioned>=1.2 [test platform:dpkg]\n'
        '   # indented comment\n'
        '\n'
        'deb [platform:debian]  # trailing comment\n'
    ))
    result = subprocess.run(['bash', str(TOOLS / 'install-system-deps'), '--list', str(bindep)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['plain', 'versioned', 'deb']


def test_repository_bindep_lists_the_lab_and_plumbing_packages():
    result = subprocess.run(['bash', str(TOOLS / 'install-system-deps'), '--list'],
                            capture_output=True, text=True, check=True)
    names = set(result.stdout.split())
    assert {'openssh-server', 'systemd-container', 'nix-bin', 'python3-venv', 'make', 'shellcheck'} <= names


# ---- doc-check ------------------------------------------------------------------------------

def test_doc_check_lists_plugins_from_the_directories(tmp_path):
    doc_check = load_tool('doc-check')
    write(tmp_path / 'plugins' / 'modules' / 'alpha.py')
    write(tmp_path / 'plugins' / 'modules' / '__init__.py')
    write(tmp_path / 'plugins' / 'module_utils' / '_helper.py')
    write(tmp_path / 'plugins' / 'doc_fragments' / '_attributes.py')
    write(tmp_path / 'plugins' / 'connection' / 'nspawn.py')
    write(tmp_path / 'plugins' / 'filter' / 'filters.py')
    write(tmp_path / 'plugins' / 'filter' / 'to_nix.yml')
    write(tmp_path / 'roles' / 'rollout' / 'meta' / 'argument_specs.yml')
    write(tmp_path / 'roles' / 'nospec' / 'tasks' / 'main.yml')
    assert list(doc_check.documented_items(str(tmp_path))) == [
        ('connection', ['nspawn']), ('filter', ['to_nix']), ('module', ['alpha']), ('role', ['rollout'])]


def test_doc_check_refuses_an_unknown_plugin_directory(tmp_path):
    doc_check = load_tool('doc-check')
    write(tmp_path / 'plugins' / 'modlues' / 'typo.py')
    with pytest.raises(SystemExit, match='modlues'):
        list(doc_check.documented_items(str(tmp_path)))


# ---- ansible-test-offline-pip ---------------------------------------------------------------

def test_get_pip_stand_in_is_valid_python_and_drops_get_pip_only_flags(tmp_path):
    offline_pip = load_tool('ansible-test-offline-pip')
    target = tmp_path / 'cache' / 'get_pip_24_2.py'
    offline_pip.write_atomically(str(target), offline_pip.STAND_IN)
    source = target.read_text()
    compile(source, str(target), 'exec')
    assert 'ensurepip' in source
    assert os.listdir(target.parent) == ['get_pip_24_2.py']


# ---- run-gates ------------------------------------------------------------------------------

def fake_command(path, exit_codes):
    """A script that exits with exit_codes[<last argument>] (default 0)."""
    cases = ''.join('  %s) exit %d ;;\n' % (name, code) for name, code in exit_codes.items())
    write(path, '#!/bin/sh\nfor last; do :; done\ncase "$last" in\n%s  *) exit 0 ;;\nesac\n' % cases)
    path.chmod(0o755)
    return path


def run_gates(tmp_path, gates, make_codes, pytest_code):
    make = fake_command(tmp_path / 'make', make_codes)
    pytest_cmd = fake_command(tmp_path / 'pytest', {'tests': pytest_code})
    env = dict(os.environ, MAKE=str(make), PYTEST=str(pytest_cmd))
    return subprocess.run(['bash', str(TOOLS / 'run-gates')] + gates, env=env,
                          capture_output=True, text=True, check=False)


def test_run_gates_passes_when_every_stage_passes(tmp_path):
    result = run_gates(tmp_path, ['sanity', 'lint'], {}, 0)
    assert result.returncode == 0
    assert 'run-gates: all gates passed' in result.stdout
    assert [line.split()[0] for line in result.stdout.split('=== summary ===')[1].splitlines()[1:4]] == [
        'sanity', 'lint', 'pytest']


def test_run_gates_runs_later_gates_after_a_failure(tmp_path):
    result = run_gates(tmp_path, ['sanity', 'lint'], {'sanity': 2}, 0)
    assert result.returncode == 1
    assert '=== lint: exit 0' in result.stdout
    assert 'FAILED (exit 2)' in result.stdout


def test_run_gates_runs_pytest_where_it_is_listed(tmp_path):
    result = run_gates(tmp_path, ['lint', 'pytest', 'molecule'], {'molecule': 3}, 0)
    assert result.returncode == 1
    summary = result.stdout.split('=== summary ===')[1].splitlines()[1:4]
    assert [line.split()[0] for line in summary] == ['lint', 'pytest', 'molecule']
    assert summary[2].endswith('FAILED (exit 3)')


def test_run_gates_treats_no_tests_collected_as_failure(tmp_path):
    result = run_gates(tmp_path, ['lint'], {}, 5)
    assert result.returncode == 1
    assert 'pytest collected no tests' in result.stderr
