"""nixos_container_declarative through ansible-playbook against the lab, then the lab's nixos-rebuild.

The module only writes /etc/nixos/containers/{NAME,default}.nix; `nixos-rebuild switch` (the lab's
stand-in, tests/lab/emulator/nixos-rebuild) turns them into the read-only conf and unit of facts
§2.3 and starts autoStart containers (facts §6.3).
"""

import json

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import normalise_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from host_checks import bad_play, host_state, module_play, module_result

MODULE = 'nixos_container_declarative'
DIRECTORY = '/etc/nixos/containers'
CONFIGURATION = '{ config, pkgs, ... }:\n{ imports = [ ./containers ]; }\n'
NGINX = 'services.nginx.enable = true;'
# One definition with every option the conf carries; bind mounts in mount-point order (NixOS sorts them).
OPTIONS = dict(
    auto_start=True,
    host_address='10.233.40.1', local_address='10.233.40.2',
    forward_ports=[dict(host_port=8080, container_port=80), dict(protocol='udp', host_port=5353)],
    bind_mounts=[dict(mount_point='/srv/a', host_path='/var/lib/decl-a', read_only=False),
                 dict(mount_point='/var/lib/decl-b')],
    extra_flags=['--no-new-privileges=yes'],
    config=NGINX,
)
# Removes what the declarative tests leave: the definitions (one switch with none stops and unlinks
# them), their root directories, profiles and GC roots (NixOS keeps those, facts §6.3), the files.
CLEAN_DECLARATIVE = r'''
mkdir -p /etc/nixos
names=$(for conf in /etc/nixos-containers/*.conf; do [ -L "$conf" ] && basename "$conf" .conf; done)
printf '{ }\n' > /etc/nixos/configuration.nix
nixos-rebuild switch 2>/dev/null || echo "nixos-rebuild switch failed" >&2
for name in $names; do
  rm -rf "/var/lib/nixos-containers/$name" "/nix/var/nix/profiles/per-container/$name" \
    "/nix/var/nix/gcroots/per-container/$name"
done
rm -rf /etc/nixos /var/lib/decl-a /var/lib/decl-b
rmdir /etc/systemd/system/machines.target.wants 2>/dev/null
for conf in /etc/nixos-containers/*.conf; do [ -L "$conf" ] && echo "left: $conf"; done
true
'''


@pytest.fixture
def decl(fresh):
    """The lab with configuration.nix importing ./containers on every host; cleaned up after."""
    for host in fresh.hosts:
        fresh.exec(host, 'sh', '-c', 'mkdir -p /etc/nixos /var/lib/decl-a /var/lib/decl-b && '
                   'cat > /etc/nixos/configuration.nix', input=CONFIGURATION, check=True)
    yield fresh
    left = {}
    for host in fresh.hosts:
        proc = fresh.exec(host, 'sh', '-c', CLEAN_DECLARATIVE, timeout=300)
        if proc.returncode != 0 or proc.stdout.strip() or proc.stderr.strip():
            left[host] = (proc.returncode, proc.stdout, proc.stderr)
    assert not left, left


def play(args, **kw):
    return module_play(args, module=MODULE, **kw)


def read(lab, path, host='host1'):
    proc = lab.exec(host, 'cat', path)
    return proc.stdout if proc.returncode == 0 else None


def files_digest(lab, host='host1'):
    """The module's directory: every file with its mode and content (or its absence)."""
    script = ('import json, os\nd = "%s"\nout = {}\nif os.path.isdir(d):\n'
              '    for e in sorted(os.listdir(d)):\n'
              '        p = os.path.join(d, e)\n'
              '        out[e] = [oct(os.stat(p).st_mode), open(p).read()]\n'
              'print(json.dumps(out, sort_keys=True))\n' % DIRECTORY)
    return lab.exec(host, '/usr/bin/python3', '-c', script, check=True).stdout


def rebuild(lab, host='host1', action='switch'):
    proc = lab.exec(host, 'nixos-rebuild', action, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def conf(lab, name, host='host1'):
    return lab.exec(host, 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout


def nspawn_argv(lab, name, host):
    """The systemd-nspawn command line the lab's unit builds from NAME's conf (facts §5.4)."""
    script = ('import json, os, sys\nsys.path.insert(0, os.path.dirname(os.path.realpath('
              '"/run/current-system/sw/bin/nixos-container")))\nfrom nixlab import common, startscript\n'
              'print(json.dumps(startscript.nspawn_argv(%r, common.read_conf(%r))))\n' % (name, name))
    return json.loads(lab.exec(host, '/usr/bin/python3', '-c', script, check=True).stdout)


def http(lab, address, host='host1'):
    return lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s/' % address).stdout.strip()


def ve_ifindex(lab, name, host='host1'):
    proc = lab.exec(host, 'ip', '-j', 'link', 'show', 've-' + name)
    return json.loads(proc.stdout)[0]['ifindex'] if proc.returncode == 0 else None


def test_write_check_diff_and_idempotence(decl):
    args = dict(name='web', **OPTIONS)
    check = decl.playbook(play(args, check=True), diff=True)
    result = module_result(check, 'task')
    assert result['changed'] and not result['failed']
    assert decl.exec('host1', 'test', '-e', DIRECTORY).returncode == 1       # check mode wrote nothing
    assert '+    autoStart = true;' in check.stdout and '+    ./web.nix' in check.stdout

    real = module_result(decl.playbook(play(args)), 'task')
    assert real['changed'] and real['imports'] == ['web']
    assert read(decl, DIRECTORY + '/web.nix') == real['content'] == result['content']
    assert read(decl, DIRECTORY + '/default.nix').endswith('{\n  imports = [\n    ./web.nix\n  ];\n}\n')
    # The definition NixOS will read: evaluated on the host with its real nix-instantiate.
    options = decl.exec('host1', 'nix-instantiate', '--store', 'dummy://', '--eval', '--strict', '--json', '-E',
                        'builtins.removeAttrs (import %s/web.nix).containers.web [ "config" ]' % DIRECTORY, check=True)
    assert json.loads(options.stdout) == {
        'autoStart': True, 'privateNetwork': True, 'hostAddress': '10.233.40.1', 'localAddress': '10.233.40.2',
        'forwardPorts': [{'protocol': 'tcp', 'hostPort': 8080, 'containerPort': 80},
                         {'protocol': 'udp', 'hostPort': 5353}],
        'bindMounts': {'/srv/a': {'hostPath': '/var/lib/decl-a', 'isReadOnly': False},
                       '/var/lib/decl-b': {'hostPath': '/var/lib/decl-b', 'isReadOnly': True}},
        'extraFlags': ['--no-new-privileges=yes']}

    before = files_digest(decl)
    for check_mode in (False, True):
        again = module_result(decl.playbook(play(args, check=check_mode)), 'task')
        assert not again['changed'], again
    assert files_digest(decl) == before

    changed = dict(args, forward_ports=[dict(host_port=8081, container_port=80)])
    run = decl.playbook(play(changed, check=True), diff=True)
    assert module_result(run, 'task')['changed']
    assert '-        hostPort = 8080;' in run.stdout and '+        hostPort = 8081;' in run.stdout
    assert files_digest(decl) == before                                     # --check changed nothing


def test_switch_gives_the_conf_nixos_container_writes(decl):
    """The same options, declarative on host1 and imperative on host2 (same name, same addresses)."""
    run = decl.playbook(play(dict(name='web', **OPTIONS)))
    assert module_result(run, 'task')['changed']
    assert decl.exec('host1', 'nixos-container', 'list').stdout == ''       # nothing applied yet
    output = rebuild(decl)
    assert 'starting the following units: container@web.service' in output
    imperative = decl.playbook(module_play(dict(name='web', **OPTIONS), host='host2'))
    assert module_result(imperative, 'task', host='host2')['changed'], str(imperative)

    declarative_text, imperative_text = conf(decl, 'web'), conf(decl, 'web', host='host2')
    # The 25.11 module's text, empty lines where optional parts are absent (facts §2.3).
    assert declarative_text == (
        'SYSTEM_PATH=%s\n\n\nPRIVATE_NETWORK=1\n\nHOST_PORT=tcp:8080:80,udp:5353:5353\n\n'
        'HOST_ADDRESS=10.233.40.1\n\n\nLOCAL_ADDRESS=10.233.40.2\n\n\n\n\n'
        'PRIVATE_USERS=no\nINTERFACES=""\nMACVLANS=""\nAUTO_START=1\n\n'
        'EXTRA_NSPAWN_FLAGS=" --bind=/var/lib/decl-a:/srv/a --bind-ro=/var/lib/decl-b:/var/lib/decl-b '
        '--no-new-privileges=yes"\n' % parse_conf(declarative_text)['SYSTEM_PATH'])
    declarative, imperative = parse_conf(declarative_text), parse_conf(imperative_text)
    # What legitimately differs: NixOS pins the system (the imperative one boots its profile) and
    # writes its defaults explicitly; the module keeps its own bookkeeping line.
    assert declarative.pop('SYSTEM_PATH').startswith('/nix/store/')
    assert imperative.pop('NIXFLEET_SYSTEM').startswith('/nix/store/')
    assert (declarative.pop('PRIVATE_USERS'), declarative.pop('INTERFACES'), declarative.pop('MACVLANS')) == \
        ('no', '', '')
    assert imperative.pop('HOST_BRIDGE') == ''
    assert declarative['EXTRA_NSPAWN_FLAGS'] == ' ' + imperative['EXTRA_NSPAWN_FLAGS']
    # Everything else is the same value, key by key.
    assert declarative == dict(imperative, EXTRA_NSPAWN_FLAGS=' ' + imperative['EXTRA_NSPAWN_FLAGS'])
    # As the collection compares confs, the two differ only by the system each pins (or records).
    normal_decl, normal_imp = normalise_conf(parse_conf(declarative_text)), normalise_conf(parse_conf(imperative_text))
    assert normal_decl.pop('SYSTEM_PATH') and normal_imp.pop('NIXFLEET_SYSTEM') and normal_decl == normal_imp
    assert imperative['HOST_PORT'] == 'tcp:8080:80,udp:5353:5353'
    assert imperative['EXTRA_NSPAWN_FLAGS'] == ('--bind=/var/lib/decl-a:/srv/a --bind-ro=/var/lib/decl-b:/var/lib/decl-b '
                                                '--no-new-privileges=yes')

    # The unit reads both the same way: one nspawn command line, except the system it boots and
    # NixOS's explicit PRIVATE_USERS=no (nspawn's default).
    decl_argv, imp_argv = nspawn_argv(decl, 'web', 'host1'), nspawn_argv(decl, 'web', 'host2')
    decl_argv.remove('--private-users=no')
    assert decl_argv.remove('--setenv=PRIVATE_USERS=no') is None and '--setenv=PRIVATE_USERS=' in imp_argv
    imp_argv.remove('--setenv=PRIVATE_USERS=')
    assert decl_argv[-1] == parse_conf(declarative_text)['SYSTEM_PATH'] + '/init'
    assert imp_argv[-1] == '/nix/var/nix/profiles/system/init'
    assert decl_argv[:-1] == imp_argv[:-1]

    # The declarative one is a read-only link from the store and runs (started by the switch).
    link = decl.exec('host1', 'readlink', '/etc/nixos-containers/web.conf', check=True).stdout.strip()
    assert link.startswith('/nix/store/')
    assert decl.exec('host1', 'stat', '-c', '%a', link, check=True).stdout.strip() == '444'
    assert decl.exec('host1', 'nixos-container', 'status', 'web').stdout.strip() == 'up'
    assert http(decl, '10.233.40.2').startswith('web generation')
    assert http(decl, '10.233.40.2', host='host2').startswith('web generation')
    info = decl.playbook(module_play(dict(name='web'), module='nixos_container_info'))
    assert module_result(info, 'task')['container']['kind'] == 'declarative'
    destroy = decl.exec('host1', 'nixos-container', 'destroy', 'web')
    assert destroy.returncode == 30 and 'cannot destroy declarative container' in destroy.stderr


def test_rebuild_restarts_changed_autostart_containers_and_absent_removes_them(decl):
    decl.playbook(play(dict(name='web', **OPTIONS)))
    api = dict(name='api', host_address='10.233.41.1', local_address='10.233.41.2', config=NGINX)
    assert module_result(decl.playbook(play(api)), 'task')['imports'] == ['api', 'web']
    assert read(decl, DIRECTORY + '/default.nix').endswith('  imports = [\n    ./api.nix\n    ./web.nix\n  ];\n}\n')
    rebuild(decl)
    assert decl.exec('host1', 'nixos-container', 'list').stdout.split() == ['api', 'web']
    # Without autoStart NixOS neither starts nor restarts a container (facts §6.3).
    assert decl.exec('host1', 'nixos-container', 'status', 'api').stdout.strip() == 'down'
    web_link = decl.exec('host1', 'ip', '-j', 'link', 'show', 've-web', check=True).stdout
    assert rebuild(decl).count('following units') == 0                    # nothing changed: nothing moves
    assert decl.exec('host1', 'ip', '-j', 'link', 'show', 've-web', check=True).stdout == web_link

    changed = dict(OPTIONS, config=NGINX + '\nenvironment.etc.x.text = "2";')
    assert module_result(decl.playbook(play(dict(name='web', **changed))), 'task')['changed']
    old_system = parse_conf(conf(decl, 'web'))['SYSTEM_PATH']
    before = ve_ifindex(decl, 'web')
    output = rebuild(decl)
    assert 'restarting the following units: container@web.service' in output
    assert parse_conf(conf(decl, 'web'))['SYSTEM_PATH'] != old_system
    assert ve_ifindex(decl, 'web') not in (None, before)                    # a new veth: it was restarted
    assert http(decl, '10.233.40.2').startswith('web generation')

    removed = module_result(decl.playbook(play(dict(name='web', state='absent'))), 'task')
    assert removed['changed'] and removed['imports'] == ['api']
    assert decl.exec('host1', 'test', '-e', DIRECTORY + '/web.nix').returncode == 1
    assert read(decl, DIRECTORY + '/default.nix').endswith('  imports = [\n    ./api.nix\n  ];\n}\n')
    assert not module_result(decl.playbook(play(dict(name='web', state='absent'))), 'task')['changed']
    output = rebuild(decl)
    assert 'stopping the following units: container@web.service' in output
    assert decl.exec('host1', 'nixos-container', 'list').stdout.split() == ['api']
    assert ve_ifindex(decl, 'web') is None
    # NixOS keeps the root directory of a removed declarative container (facts §6.3).
    assert decl.exec('host1', 'test', '-d', '/var/lib/nixos-containers/web').returncode == 0
    decl.exec('host1', 'rm', '-rf', '/var/lib/nixos-containers/web', '/nix/var/nix/profiles/per-container/web',
              '/nix/var/nix/gcroots/per-container/web', check=True)


BAD_CASES = [
    (dict(name='web_1', config=NGINX), 'name'),
    (dict(name='a' * 65), 'name'),
    (dict(name='default'), 'name'),
    (dict(name='web', host_address='10.233.1.256', local_address='10.233.1.2'), 'host_address'),
    (dict(name='web', host_address='10.233.1.1'), 'local_address (LOCAL_ADDRESS) is required as well'),
    (dict(name='web', private_network=False, host_address='10.233.1.1', local_address='10.233.1.2'),
     'private_network'),
    (dict(name='web', forward_ports=[dict(host_port=80), dict(host_port=80)]), 'forward_ports'),
    (dict(name='web', bind_mounts=[dict(mount_point='/a b')]), 'bind_mounts'),
    (dict(name='web', extra_flags=['$(reboot)']), 'extra_flags'),
    (dict(name='web', private_users='yes'), 'private_users'),
    (dict(name='web', config='services.nginx.enable = '), 'config'),
    (dict(name='web', config='} // { boot.isContainer = false; } // {'), 'config'),
    (dict(name='web', config=NGINX, config_file='/etc/nixos/configuration.nix'), 'mutually exclusive'),
    (dict(name='web', config_file='/nonexistent.nix'), 'config_file'),
    (dict(name='web', settings={'a': {'_nix_path': '../x'}}), 'settings'),
    (dict(name='hand'), 'not written by this module'),
    (dict(name='taken'), 'imperative container taken exists'),
]


def test_bad_input_fails_before_any_change(decl):
    decl.playbook(play(dict(name='web', config=NGINX)))
    decl.exec('host1', 'sh', '-c', 'printf "{ }\\n" > %s/hand.nix' % DIRECTORY, check=True)
    taken = decl.playbook(module_play(dict(name='taken', config=NGINX, state='present')))
    assert module_result(taken, 'task')['changed']
    before = (files_digest(decl), host_state(decl, 'host1'))
    run = decl.playbook(bad_play(MODULE, [args for args, needle in BAD_CASES]))
    for index, (args, needle) in enumerate(BAD_CASES):
        result = module_result(run, 'bad%d' % index)
        assert result['failed'] and needle in result['msg'], (args, result['msg'])
        assert 'Traceback' not in result['msg']
    assert (files_digest(decl), host_state(decl, 'host1')) == before
    # A file the module did not write stays out of the imports, and a rebuild is unaffected by the failures.
    assert read(decl, DIRECTORY + '/default.nix').endswith('  imports = [\n    ./web.nix\n  ];\n}\n')


def test_the_rebuild_refuses_what_nixos_refuses_and_changes_nothing(decl):
    decl.playbook(play(dict(name='web', config=NGINX, host_address='10.233.42.1', local_address='10.233.42.2')))
    rebuild(decl)
    before = host_state(decl, 'host1')
    cases = [
        ('{ containers.x.bogus = 1; containers.x.config = { }; }', "The option `containers.x.bogus' does not exist."),
        ('{ containers.x_y.config = { }; }', 'Names containing underscores are not allowed'),
        ('{ containers.x.autoStart = "yes"; containers.x.config = { }; }',
         "A definition for option `containers.x.autoStart' is not of type `boolean'."),
        ('{ containers.x.privateNetwork = true; }', "The option `containers.x.path' is used but not defined."),
    ]
    for text, message in cases:
        decl.exec('host1', 'sh', '-c', 'cat > /etc/nixos/extra.nix', input=text + '\n', check=True)
        decl.exec('host1', 'sh', '-c', 'printf "{ imports = [ ./containers ./extra.nix ]; }\\n" '
                  '> /etc/nixos/configuration.nix', check=True)
        proc = decl.exec('host1', 'nixos-rebuild', 'switch', timeout=300)
        assert proc.returncode == 1 and message in proc.stderr, (text, proc.stderr)
        assert host_state(decl, 'host1') == before
    # An imperative container where a definition would go: refused before any change.
    decl.exec('host1', 'sh', '-c', 'cat > /etc/nixos/configuration.nix', input=CONFIGURATION, check=True)
    taken = decl.playbook(module_play(dict(name='taken', config=NGINX, state='present')))
    assert module_result(taken, 'task')['changed']
    before = host_state(decl, 'host1')
    decl.exec('host1', 'sh', '-c', 'printf "{ containers.taken.config = { }; }\\n" > /etc/nixos/extra.nix && '
              'printf "{ imports = [ ./containers ./extra.nix ]; }\\n" > /etc/nixos/configuration.nix', check=True)
    proc = decl.exec('host1', 'nixos-rebuild', 'switch', timeout=300)
    assert proc.returncode == 1 and "/etc/nixos-containers/taken.conf is an imperative container's conf" in proc.stderr
    assert host_state(decl, 'host1') == before
    decl.exec('host1', 'rm', '/etc/nixos/extra.nix', check=True)
    decl.exec('host1', 'sh', '-c', 'cat > /etc/nixos/configuration.nix', input=CONFIGURATION, check=True)
    assert 'would' not in rebuild(decl, action='dry-activate')             # the definitions are applied
