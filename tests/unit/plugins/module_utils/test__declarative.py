# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nixos_container_declarative's renderer, imports file, input checks and file handling."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils import _declarative
from ansible_collections.nixfleet.containers.plugins.module_utils._container import container_argument_spec
from ansible_collections.nixfleet.containers.plugins.module_utils._declarative import (
    DeclarativeManager,
    declarative_argument_spec,
    guest_body,
    input_errors,
    managed_names,
    nix_options,
    render_container,
    render_imports,
    MANAGED_MARK,
    SHARED_OPTIONS,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout

# Calls the guest module with stub arguments, so its attribute set can be read as JSON.
GUEST_OF = '(import %s).containers.%s.config { config = { }; lib = { }; pkgs = { }; }'
OPTIONS_OF = 'builtins.removeAttrs (import %s).containers.%s [ "config" ]'


def params(**given):
    """The module's params as AnsibleModule hands them over (every option, defaults applied)."""
    spec = declarative_argument_spec()
    values = dict((key, option.get('default')) for key, option in spec.items())
    values.update(given)
    return values


def full_params():
    return params(
        name='web', auto_start=True, restart_if_changed=False,
        host_address='10.233.7.1', local_address='10.233.7.2',
        forward_ports=[dict(protocol='tcp', host_port=8080, container_port=80),
                       dict(protocol='udp', host_port=53, container_port=None)],
        bind_mounts=[dict(mount_point='/srv', host_path='/data', read_only=False),
                     dict(mount_point='/b', host_path=None, read_only=True)],
        tmpfs=['/var/tmp'], additional_capabilities=['CAP_NET_RAW'], extra_flags=['--no-new-privileges=yes'],
        private_users='65536', config='services.nginx.enable = true;',
        settings={'networking': {'firewall': {'allowedTCPPorts': [80]}}},
    )


FULL_TEXT = '''\
# Managed by nixfleet.containers.nixos_container_declarative: container web.
# Written by Ansible; edits are overwritten. Applied by nixos-rebuild switch.
{
  containers.web = {
    autoStart = true;
    restartIfChanged = false;
    privateNetwork = true;
    hostAddress = "10.233.7.1";
    localAddress = "10.233.7.2";
    forwardPorts = [
      {
        protocol = "tcp";
        hostPort = 8080;
        containerPort = 80;
      }
      {
        protocol = "udp";
        hostPort = 53;
      }
    ];
    bindMounts = {
      "/srv" = {
        hostPath = "/data";
        isReadOnly = false;
      };
      "/b" = {
        hostPath = "/b";
        isReadOnly = true;
      };
    };
    tmpfs = [ "/var/tmp" ];
    additionalCapabilities = [ "CAP_NET_RAW" ];
    extraFlags = [ "--no-new-privileges=yes" ];
    privateUsers = 65536;
    config = { config, lib, pkgs, ... }: {
      services.nginx.enable = true;
      networking.firewall.allowedTCPPorts = [ 80 ];
    };
  };
}
'''


def render(p):
    return render_container(p['name'], nix_options(p), guest_body(p))


# ---------------------------------------------------------------------------------------
# Options and documentation

def test_shared_options_are_nixos_containers_own():
    spec, single = declarative_argument_spec(), container_argument_spec()
    for key in SHARED_OPTIONS:
        assert spec[key] == single[key], key
    assert set(spec) - set(SHARED_OPTIONS) == {'state', 'directory', 'restart_if_changed'}


# ---------------------------------------------------------------------------------------
# Rendering

def test_full_example_renders_exactly():
    assert render(full_params()) == FULL_TEXT


def test_rendered_file_evaluates_to_the_options(nix):
    path = nix.write('web.nix', render(full_params()))
    assert nix.parse_error(path) is None
    assert nix.eval_json(nix.write('o.nix', OPTIONS_OF % (path, 'web'))) == {
        'autoStart': True, 'restartIfChanged': False, 'privateNetwork': True,
        'hostAddress': '10.233.7.1', 'localAddress': '10.233.7.2',
        'forwardPorts': [{'protocol': 'tcp', 'hostPort': 8080, 'containerPort': 80},
                         {'protocol': 'udp', 'hostPort': 53}],
        'bindMounts': {'/srv': {'hostPath': '/data', 'isReadOnly': False},
                       '/b': {'hostPath': '/b', 'isReadOnly': True}},
        'tmpfs': ['/var/tmp'], 'additionalCapabilities': ['CAP_NET_RAW'],
        'extraFlags': ['--no-new-privileges=yes'], 'privateUsers': 65536,
    }
    assert nix.eval_json(nix.write('g.nix', GUEST_OF % (path, 'web'))) == {
        'services': {'nginx': {'enable': True}}, 'networking': {'firewall': {'allowedTCPPorts': [80]}}}


def test_minimal_definition_still_has_a_guest(nix):
    text = render(params(name='x'))
    assert text.endswith('    privateNetwork = true;\n    config = { config, lib, pkgs, ... }: { };\n  };\n}\n')
    path = nix.write('x.nix', text)
    assert nix.eval_json(nix.write('g.nix', GUEST_OF % (path, 'x'))) == {}


def test_unset_options_are_left_to_nixos():
    assert nix_options(params(name='x')) == {'privateNetwork': True}
    assert nix_options(params(name='x', private_network=False, auto_start=False, tmpfs=[])) == {
        'autoStart': False, 'privateNetwork': False, 'tmpfs': []}


def test_private_users_words_stay_strings():
    for word in ('no', 'identity', 'pick'):
        assert nix_options(params(name='x', private_users=word))['privateUsers'] == word
    assert nix_options(params(name='x', private_users='0'))['privateUsers'] == 0


HOSTILE = ['"', '\\', '${x}', '\\${x}', "''${x}", '$', '\n}\n{ injected = true;', '"; injected = true; x = "',
           '} // { injected = true; } // {', '\u202e', '#', '/*']


def test_hostile_settings_stay_data(nix):
    settings = dict(('k%d' % i, s) for i, s in enumerate(HOSTILE))
    settings[HOSTILE[1]] = {HOSTILE[2]: HOSTILE[3]}
    path = nix.write('h.nix', render(params(name='h', settings=settings)))
    assert nix.eval_json(nix.write('g.nix', GUEST_OF % (path, 'h'))) == settings
    assert nix.eval_json(nix.write('o.nix', OPTIONS_OF % (path, 'h'))) == {'privateNetwork': True}


def test_names_that_are_not_nix_identifiers_are_quoted(nix):
    text = render(params(name='1web'))
    assert '  containers."1web" = {\n' in text
    path = nix.write('n.nix', text)
    assert nix.eval_json(nix.write('o.nix', 'builtins.attrNames (import %s).containers' % path)) == ['1web']


def test_config_file_is_imported_by_the_guest(nix, tmp_path):
    module = tmp_path / 'guest.nix'
    module.write_text('{ services.nginx.enable = true; }\n')
    text = render(params(name='f', config_file=str(module)))
    assert '    config = { config, lib, pkgs, ... }: {\n      imports = [ %s ];\n    };\n' % module in text
    path = nix.write('f.nix', text)
    imports = nix.eval_json(nix.write('g.nix', 'map toString (%s).imports' % (GUEST_OF % (path, 'f'))))
    assert imports == [str(module)]


def test_imports_file(nix, tmp_path):
    text = render_imports(['web', 'api', 'b-2'])
    assert text == (MANAGED_MARK + ': the imports file.\n'
                    '# Import this directory from configuration.nix: imports = [ ./containers ];\n'
                    '{\n  imports = [\n    ./api.nix\n    ./b-2.nix\n    ./web.nix\n  ];\n}\n')
    path = nix.write('default.nix', text)
    assert nix.eval_json(nix.write('i.nix', 'map toString (import %s).imports' % path)) == [
        os.path.join(str(tmp_path), name) for name in ('api.nix', 'b-2.nix', 'web.nix')]
    empty = nix.write('empty.nix', render_imports([]))
    assert nix.eval_json(nix.write('e.nix', '(import %s).imports' % empty)) == []


def test_a_configuration_importing_the_directory_sees_every_container(nix, tmp_path):
    directory = tmp_path / 'containers'
    directory.mkdir()
    for name in ('web', 'api'):
        (directory / ('%s.nix' % name)).write_text(render(params(name=name)))
    (directory / 'default.nix').write_text(render_imports(['web', 'api']))
    configuration = nix.write('configuration.nix', '{ imports = [ ./containers ]; }\n')
    collect = ('let load = m: import m; collect = m: let v = load m; in [ v ] ++ builtins.concatMap collect '
               '(v.imports or [ ]); in builtins.concatMap (v: builtins.attrNames (v.containers or { })) '
               '(collect %s)' % configuration)
    assert sorted(nix.eval_json(nix.write('c.nix', collect))) == ['api', 'web']


# ---------------------------------------------------------------------------------------
# Input checks

@pytest.mark.parametrize('given, needle', [
    (dict(name='web_1'), 'name'),
    (dict(name='a' * 65), 'systemd allows at most 64'),
    (dict(name='default'), 'name: "default"'),
    (dict(name='-x'), 'name'),
    (dict(name='web', host_address='10.233.1.256', local_address='10.233.1.2'), 'host_address'),
    (dict(name='web', host_address='10.233.1.1', local_address='10.233.1.1'), 'must differ'),
    (dict(name='web', private_network=False, host_address='10.233.1.1', local_address='10.233.1.2'),
     'host_address (HOST_ADDRESS) needs private_network'),
    (dict(name='web', forward_ports=[dict(host_port=80), dict(host_port=80)]), 'forward_ports'),
    (dict(name='web', forward_ports=[dict(host_port=70000)]), 'forward_ports'),
    (dict(name='web', bind_mounts=[dict(mount_point='/a b')]), 'bind_mounts'),
    (dict(name='web', bind_mounts=[dict(mount_point='relative')]), 'bind_mounts'),
    (dict(name='web', bind_mounts=[dict(mount_point='/a'), dict(mount_point='/a', host_path='/b')]), 'bind_mounts'),
    (dict(name='web', extra_flags=['--x="y"']), 'extra_flags'),
    (dict(name='web', additional_capabilities=['NET_RAW']), 'additional_capabilities'),
    (dict(name='web', local_mac_address='01:00:5e:00:00:01'), 'local_mac_address'),
    (dict(name='web', private_users='yes'), 'private_users'),
    (dict(name='web', private_users='lots'), 'private_users'),
    (dict(name='web', settings={'a': {'_nix_path': 'relative'}}), 'settings'),
    (dict(name='web', settings={'a': object()}), 'settings'),
    (dict(name='web', config_file='/nonexistent/guest.nix'), 'config_file'),
    (dict(name='web', config_file='relative.nix'), 'config_file'),
    (dict(name='web', directory='containers'), 'directory'),
    # Found by the fault suite: these used to fail only at the write, with an OSError naming no option.
    (dict(name='web', directory='/etc/passwd'), 'directory: /etc/passwd exists and is not a directory'),
    (dict(name='web', directory='/etc/passwd/sub/dir'), 'directory: /etc/passwd/sub/dir cannot be created: /etc/passwd'),
    (dict(name='web', directory='/etc/nixos/a\0b'), 'directory'),
    (dict(name='web', config='x = "a\0b";'), 'config: the text contains a NUL'),
])
def test_input_errors_name_the_option(given, needle):
    errors = input_errors(params(**given))
    assert errors and needle in '; '.join(errors), errors


def test_good_input_has_no_errors():
    assert input_errors(full_params()) == []


@pytest.mark.parametrize('kernel, private_network, refused', [
    ('6.18.0-1-amd64', True, False),      # altnames: NixOS skips the assertion
    ('5.8.1', True, False),               # compareVersions("5.8.1", "5.8") = 1
    ('5.8', True, True),
    ('5.4.0-42-generic', True, True),
    ('4.19.0', False, False),             # no private network: no ve- interface, no limit
])
def test_long_names_as_nixos_asserts_them(kernel, private_network, refused):
    # containers-names: really-long-name (16) and really-long-long-name-2 (23) with privateNetwork.
    for name in ('really-long-name', 'really-long-long-name-2'):
        errors = input_errors(params(name=name, private_network=private_network), kernel_release=kernel)
        assert bool(errors) == refused, (kernel, errors)
        if refused:
            assert 'at most 11' in errors[0]
    assert input_errors(params(name='first'), kernel_release='5.4.0') == []


@pytest.mark.parametrize('given', [
    dict(host_bridge='br0', local_address='192.168.0.100/24', local_address6='fc00::2/7'),
    dict(host_bridge='br0'),
    dict(host_address='fc00::2', local_address='fc00::1'),
    dict(interfaces=['eth1']),
    dict(macvlans=['eth1'], private_network=False),
])
def test_nixos_test_definitions_pass(given):
    # containers-bridge (webserver, web-noip) and containers-ip (webserver6), as the VM tests write them.
    assert input_errors(params(name='webserver', **given)) == []


# ---------------------------------------------------------------------------------------
# Files on a host (a scratch directory)

class FakeModule(object):
    def __init__(self, check_mode=False, diff=True, **given):
        self.params = params(**given)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []
        self.commands = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return '/usr/bin/nix-instantiate' if os.path.exists('/usr/bin/nix-instantiate') else None

    def run_command(self, argv, data=None):
        self.commands.append(argv)
        proc = subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def warn(self, text):
        self.warnings.append(text)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A scratch directory for the files and a conf directory for the imperative-clash check."""
    conf_dir = tmp_path / 'nixos-containers'
    conf_dir.mkdir()
    monkeypatch.setattr(_declarative.Layout, 'detect', classmethod(lambda cls: Layout(str(conf_dir), str(tmp_path))))
    monkeypatch.setattr(_declarative, 'MODULE_LOCK_PATH', str(tmp_path / 'lock'))
    return tmp_path


def run(host, check_mode=False, **given):
    given.setdefault('directory', str(host / 'containers'))
    return DeclarativeManager(FakeModule(check_mode=check_mode, **given)).run()


def files(host):
    directory = host / 'containers'
    if not directory.exists():
        return {}
    return dict((p.name, p.read_text()) for p in sorted(directory.iterdir()))


def test_present_writes_both_files_then_nothing_changes(host):
    result = run(host, name='web', config='services.nginx.enable = true;')
    assert result['changed'] and result['imports'] == ['web']
    written = files(host)
    assert written == {'web.nix': result['content'], 'default.nix': render_imports(['web'])}
    assert oct(os.stat(str(host / 'containers' / 'web.nix')).st_mode & 0o777) == '0o644'
    again = run(host, name='web', config='services.nginx.enable = true;')
    assert not again['changed'] and files(host) == written
    assert again['diff'][0]['before'] == again['diff'][0]['after']


def test_check_mode_reports_and_writes_nothing(host):
    result = run(host, check_mode=True, name='web')
    assert result['changed'] and files(host) == {}
    assert result['diff'][0]['before'] == '' and result['diff'][0]['after'] == result['content']
    run(host, name='web')
    before = files(host)
    change = run(host, check_mode=True, name='web', auto_start=True)
    assert change['changed'] and files(host) == before
    assert '    autoStart = true;\n' in change['diff'][0]['after'] and 'autoStart' not in change['diff'][0]['before']


def test_imports_stay_sorted_and_absent_removes_file_and_import(host):
    for name in ('web', 'api', 'db'):
        run(host, name=name)
    assert files(host)['default.nix'] == render_imports(['api', 'db', 'web'])
    result = run(host, name='db', state='absent')
    assert result['changed'] and result['imports'] == ['api', 'web'] and result['content'] == ''
    assert sorted(files(host)) == ['api.nix', 'default.nix', 'web.nix']
    assert files(host)['default.nix'] == render_imports(['api', 'web'])
    assert not run(host, name='db', state='absent')['changed']
    run(host, name='api', state='absent')
    run(host, name='web', state='absent')
    assert files(host) == {'default.nix': render_imports([])}


def test_absent_on_an_empty_host_creates_nothing(host):
    assert not run(host, name='web', state='absent')['changed']
    assert not (host / 'containers').exists()


def test_files_the_module_did_not_write_are_never_touched(host):
    directory = host / 'containers'
    directory.mkdir()
    (directory / 'hand.nix').write_text('{ containers.hand.config = { }; }\n')
    with pytest.raises(ValueError, match='hand.nix exists and was not written by this module'):
        run(host, name='hand')
    result = run(host, name='web')
    assert result['imports'] == ['web']            # the hand-written file is not imported either
    (directory / 'default.nix').write_text('{ imports = [ ./hand.nix ]; }\n')
    with pytest.raises(ValueError, match='default.nix exists and was not written by this module'):
        run(host, name='api')
    assert (directory / 'hand.nix').read_text() == '{ containers.hand.config = { }; }\n'


def test_an_imperative_container_of_the_same_name_is_refused(host):
    (host / 'nixos-containers' / 'web.conf').write_text('PRIVATE_NETWORK=1\n')
    with pytest.raises(ValueError, match='imperative container web exists'):
        run(host, name='web')
    assert files(host) == {}
    assert run(host, name='web', state='absent')['changed'] is False


def test_bad_input_fails_before_any_change(host):
    run(host, name='web')
    before = files(host)
    with pytest.raises(ValueError, match='name'):
        run(host, name='bad_name')
    with pytest.raises(ValueError, match='host_address'):
        run(host, name='web', host_address='nope', local_address='10.0.0.2')
    assert files(host) == before


def test_a_failed_write_names_the_directory_and_reports_what_it_changed(host, monkeypatch):
    real_write = _declarative.write_file_atomically

    def write_once(path, text):
        if path.endswith('default.nix'):
            raise OSError(28, 'No space left on device')
        real_write(path, text)

    monkeypatch.setattr(_declarative, 'write_file_atomically', write_once)
    manager = DeclarativeManager(FakeModule(name='web', directory=str(host / 'containers')))
    with pytest.raises(OSError, match='directory: writing into .*containers failed: .*No space left'):
        manager.run()
    assert manager.result['changed'] is True and sorted(files(host)) == ['web.nix']   # the container file moved
    monkeypatch.setattr(_declarative, 'write_file_atomically', lambda path, text: real_write(path + '/x', text))
    manager = DeclarativeManager(FakeModule(name='api', directory=str(host / 'containers')))
    with pytest.raises(OSError, match='directory: writing into'):
        manager.run()
    assert manager.result['changed'] is False and sorted(files(host)) == ['web.nix']   # nothing moved


@pytest.mark.skipif(not os.path.exists('/usr/bin/nix-instantiate'), reason='needs nix-instantiate')
@pytest.mark.parametrize('config, needle', [
    ('services.nginx.enable = ', 'config: error: syntax error'),
    ('} // { boot.isContainer = false; } // {', 'config: the text is not the body of one attribute set'),
])
def test_nix_that_does_not_parse_or_escapes_the_module_is_refused(host, config, needle):
    with pytest.raises(ValueError, match=needle):
        run(host, name='web', config=config)
    assert files(host) == {}


@pytest.mark.skipif(not os.path.exists('/usr/bin/nix-instantiate'), reason='needs nix-instantiate')
def test_a_config_file_that_does_not_parse_is_refused(host):
    bad = host / 'guest.nix'
    bad.write_text('{ services.nginx.enable = ; }\n')
    with pytest.raises(ValueError, match='config_file: .*guest.nix does not parse'):
        run(host, name='web', config_file=str(bad))


def test_managed_names_by_first_line(tmp_path):
    (tmp_path / 'web.nix').write_text(render(params(name='web')))
    (tmp_path / 'default.nix').write_text(render_imports(['web']))
    (tmp_path / 'hand.nix').write_text('{ }\n')
    (tmp_path / 'bad_name.nix').write_text(MANAGED_MARK + '\n')
    (tmp_path / 'notes.txt').write_text(MANAGED_MARK + '\n')
    assert managed_names(str(tmp_path)) == ['web']
    assert managed_names(str(tmp_path / 'missing')) == []


def test_interfaces_and_macvlans_are_nixos_lists():
    # containers-physical_interfaces (server) and containers-macvlans (test1), as the VM tests write them.
    assert nix_options(params(name='server', interfaces=['eth1'])) == {'privateNetwork': True, 'interfaces': ['eth1']}
    assert nix_options(params(name='test1', private_network=False, macvlans=['eth1'])) == {
        'privateNetwork': False, 'macvlans': ['eth1']}
