"""tools/install-system-deps reads bindep profiles: the default and [test] are installed (the lab
and the tests need them), other profiles are not, and a negated selector excludes."""

from __future__ import annotations

import subprocess
from pathlib import Path

TOOL = Path(__file__).resolve().parents[3] / 'tools' / 'install-system-deps'


def listed(tmp_path, text):
    bindep = tmp_path / 'bindep.txt'
    bindep.write_text(text)
    result = subprocess.run(['bash', str(TOOL), '--list', str(bindep)], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_default_and_test_profiles_are_installed_other_profiles_are_not(tmp_path):
    assert listed(tmp_path, (
        'controller [platform:dpkg]\n'
        'lab [platform:dpkg test]\n'
        'lab-any-platform [test]\n'
        'docs-only [doc platform:dpkg]\n'
        'compile-only [compile]\n'
        'either [doc test]\n'
    )) == ['controller', 'lab', 'lab-any-platform', 'either']


def test_negated_selectors_exclude(tmp_path):
    assert listed(tmp_path, (
        'not-in-tests [!test]\n'
        'not-on-debian [test !platform:dpkg]\n'
        'rpm-lab [platform:rpm test]\n'
        'kept [!doc platform:dpkg]\n'
    )) == ['kept']


def test_the_repository_bindep_installs_the_lab_from_the_test_profile():
    text = (TOOL.parents[1] / 'bindep.txt').read_text()
    lab_lines = [line for line in text.splitlines() if line.startswith(('nftables ', 'nix-bin ', 'chromium '))]
    assert lab_lines and all('test' in line.split('[', 1)[1] for line in lab_lines)
    result = subprocess.run(['bash', str(TOOL), '--list'], capture_output=True, text=True, check=True)
    assert {'nftables', 'nix-bin', 'chromium', 'openssh-client'} <= set(result.stdout.split())
