"""_build: the key of a distinct system, its configuration, and Nix's message of a failed build."""

import subprocess

from ansible_collections.nixfleet.containers.plugins.module_utils._build import (
    nix_error,
    shared_configuration,
    system_key,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import render_configuration_nix


def test_the_same_text_and_nixpkgs_give_one_key_anything_else_another():
    text = shared_configuration('services.nginx.enable = true;')
    assert system_key(text) == system_key(shared_configuration('services.nginx.enable = true;'))
    assert system_key(text) == system_key(text, '<nixpkgs/nixos>')
    others = [system_key(shared_configuration('services.openssh.enable = true;')),
              system_key(text, '/srv/nixpkgs/nixos'),
              system_key(text, None, 'ab' * 32)]
    assert len(set(others + [system_key(text)])) == 4


def test_the_shared_configuration_is_the_template_without_the_name():
    extra = 'services.nginx.enable = true;'
    text = shared_configuration(extra)
    assert 'lib.mkDefault "";' in text and extra in text
    named = render_configuration_nix('web1', extra)
    # The same lines as nixos-container's, but the host name and the comment that says why.
    assert [line for line in named.splitlines() if 'hostName' not in line] == \
        [line for line in text.splitlines() if 'hostName' not in line and not line.lstrip().startswith('#')]


def test_the_shared_configuration_parses():
    done = subprocess.run(['nix-instantiate', '--store', 'dummy://', '--parse', '-'], capture_output=True, text=True,
                          input=shared_configuration('services.nginx.enable = true;'), check=False)
    assert done.returncode == 0, done.stderr


def test_nix_error_takes_the_cause_after_the_trace():
    stderr = ('error:\n       … while evaluating the attribute \'config.system.build.toplevel\'\n'
              '         at /nix/store/x/nixos/modules/system/activation/top-level.nix:71:12:\n\n'
              '       error: the nginx module is broken\n'
              "(use '--show-trace' to show detailed location information)\n")
    assert nix_error(stderr) == 'error: the nginx module is broken'
    assert nix_error('warning: x\nsomething went wrong\n') == 'warning: x something went wrong'
    assert nix_error('', '') == 'no message'
