"""nixos_container through ansible-playbook against the lab, asserting on real host state."""

import json

import pytest

from host_checks import assert_four_steps, four_step_play, host_digest, host_state, module_play, module_result

NGINX = 'services.nginx.enable = true;'


def conf_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout


def links(lab, host='host1'):
    proc = lab.exec(host, 'ip', '-j', 'addr', 'show', check=True)
    return dict((l['ifname'], l) for l in json.loads(proc.stdout))


def http_from_host(lab, address, host='host1', port=80):
    proc = lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s:%d/' % (address, port))
    return proc.stdout.strip()


def status(lab, name, host='host1'):
    return lab.exec(host, 'nixos-container', 'status', name).stdout.strip()


def test_create_and_start_four_steps(fresh):
    run = fresh.playbook(four_step_play(dict(name='web', config=NGINX)))
    assert_four_steps(run)
    real = module_result(run, 'step2 real')
    assert real['action'] == 'create'
    assert real['plan']['steps'] == ['create', 'start']
    # The module chose the pair itself and passed it explicitly (facts §4 rule).
    assert conf_of(fresh, 'web') == ('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n'
                                     'HOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n') + _meta_lines(fresh, 'web')
    assert status(fresh, 'web') == 'up'
    ve = links(fresh)['ve-web']
    assert [a['local'] for a in ve['addr_info'] if a['family'] == 'inet'] == ['10.233.1.1']
    assert http_from_host(fresh, '10.233.1.2').startswith('web generation 1')
    assert real['container']['local_address'] == '10.233.1.2'
    assert real['container']['state'] == 'up'


def _meta_lines(lab, name):
    """Our bookkeeping line(s) after the imperative ones: the system built last."""
    target = lab.exec('host1', 'readlink', '-f', '/nix/var/nix/profiles/per-container/%s/system' % name,
                      check=True).stdout.strip()
    return 'NIXFLEET_SYSTEM=%s\n' % target


def test_guest_change_reloads_in_place(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    ifindex = links(fresh)['ve-web']['ifindex']
    run = fresh.playbook(four_step_play(dict(name='web', config=NGINX + '\nenvironment.etc.x.text = "2";')))
    assert_four_steps(run)
    real = module_result(run, 'step2 real')
    assert real['action'] == 'reload'
    assert real['reasons'] == ['the guest configuration changed']
    assert real['generation_before'] == 1 and real['generation_after'] == 2
    # Reload: the same veth (no restart), and the guest service answers from the new generation.
    assert links(fresh)['ve-web']['ifindex'] == ifindex
    assert http_from_host(fresh, '10.233.1.2').startswith('web generation 2')


def test_conf_change_restarts(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    ifindex = links(fresh)['ve-web']['ifindex']
    ports = [dict(host_port=8080, container_port=80)]
    run = fresh.playbook(four_step_play(dict(name='web', config=NGINX, forward_ports=ports)))
    assert_four_steps(run)
    real = module_result(run, 'step2 real')
    assert real['action'] == 'restart'
    assert real['plan']['steps'] == ['stop', 'write_conf', 'start']
    assert "HOST_PORT changes from '' to 'tcp:8080:80'" in real['reasons']
    assert 'HOST_PORT=tcp:8080:80\n' in conf_of(fresh, 'web')
    assert links(fresh)['ve-web']['ifindex'] != ifindex
    # nspawn's own forward: the host's uplink address, port 8080, reaches the guest's :80.
    assert http_from_host(fresh, fresh.address('host1'), port=8080).startswith('web generation 1')
    # ... but not localhost: nspawn forwards no 127.0.0.0/8 destination (the option's docs say so).
    assert http_from_host(fresh, '127.0.0.1', port=8080) == ''


def test_stop_start_present_absent(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    run = fresh.playbook(four_step_play(dict(name='web', state='stopped')))
    assert_four_steps(run)
    assert status(fresh, 'web') == 'down'
    assert 've-web' not in links(fresh)
    run = fresh.playbook(four_step_play(dict(name='web', state='present')))
    assert_four_steps(run, expect=(False, False, False, False))
    assert status(fresh, 'web') == 'down'
    run = fresh.playbook(four_step_play(dict(name='web', state='started')))
    assert_four_steps(run)
    assert status(fresh, 'web') == 'up'
    run = fresh.playbook(four_step_play(dict(name='web', state='absent')))
    assert_four_steps(run)
    assert fresh.exec('host1', 'test', '-e', '/etc/nixos-containers/web.conf').returncode == 1
    assert fresh.exec('host1', 'test', '-e', '/var/lib/nixos-containers/web').returncode == 1
    assert fresh.exec('host1', 'test', '-e', '/nix/var/nix/profiles/per-container/web').returncode == 1


def test_host_side_options_reach_nspawn(fresh):
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /srv/data && echo hello > /srv/data/greeting', check=True)
    options = dict(
        name='files', config=NGINX,
        bind_mounts=[dict(mount_point='/data', host_path='/srv/data')],
        tmpfs=['/scratch'],
        host_address6='fc00::1', local_address6='fc00::2',
    )
    run = fresh.playbook(four_step_play(options))
    assert_four_steps(run)
    conf = conf_of(fresh, 'files')
    assert 'EXTRA_NSPAWN_FLAGS="--bind-ro=/srv/data:/data --tmpfs=/scratch"\n' in conf
    assert 'HOST_ADDRESS6=fc00::1\n' in conf and 'LOCAL_ADDRESS6=fc00::2\n' in conf
    inside = fresh.exec('host1', 'nixos-container', 'run', 'files', '--', 'cat', '/data/greeting')
    assert inside.stdout.strip() == 'hello', inside.stderr
    write = fresh.exec('host1', 'nixos-container', 'run', 'files', '--', 'touch', '/data/new')
    assert write.returncode != 0  # read-only by default, as the declarative module does
    mounts = fresh.exec('host1', 'nixos-container', 'run', 'files', '--', 'cat', '/proc/mounts').stdout
    assert ' /scratch tmpfs ' in mounts
    ve6 = [a['local'] for a in links(fresh)['ve-files']['addr_info'] if a['family'] == 'inet6']
    assert 'fc00::1' in ve6


def test_settings_are_rendered_injection_proof(fresh):
    hostile = 'x"; services.openssh.enable = true; y = "${builtins.currentTime}\\'
    run = fresh.playbook(module_play(dict(name='web', settings=dict(
        services=dict(nginx=dict(enable=True)), environment=dict(etc=dict(motd=dict(text=hostile)))))))
    assert run.rc == 0, run.stdout
    text = fresh.exec('host1', 'cat', '/var/lib/nixos-containers/web/etc/nixos/configuration.nix',
                      check=True).stdout
    parsed = fresh.exec('host1', 'nix-instantiate', '--store', 'dummy://', '--eval', '--strict', '--json', '-E',
                        '(import /var/lib/nixos-containers/web/etc/nixos/configuration.nix '
                        '{ config = {}; lib = { mkDefault = x: x; }; pkgs = {}; })', check=True).stdout
    data = json.loads(parsed)
    assert data['environment']['etc']['motd']['text'] == hostile
    assert 'openssh' not in data.get('services', {})
    assert data['services']['nginx']['enable'] is True
    assert '\\${builtins.currentTime}' in text
    # and no TCP :22 stand-in service started in the guest: openssh stayed off.
    probe = fresh.exec('host1', 'bash', '-c', 'exec 3<>/dev/tcp/10.233.1.2/22', timeout=10)
    assert probe.returncode != 0


def test_rollback_restores_previous_generation(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    fresh.playbook(module_play(dict(name='web', config=NGINX + '\nenvironment.etc.v.text = "2";')))
    assert http_from_host(fresh, '10.233.1.2').startswith('web generation 2')
    run = fresh.playbook(module_play(dict(name='web', rollback=True)))
    assert run.rc == 0, run.stdout
    result = module_result(run, 'task')
    assert result['action'] == 'rollback' and result['changed']
    assert (result['generation_before'], result['generation_after']) == (2, 1)
    assert http_from_host(fresh, '10.233.1.2').startswith('web generation 1')
    # The declared configuration is generation 2's: the next plain run rolls forward again.
    again = fresh.playbook(module_play(dict(name='web', config=NGINX + '\nenvironment.etc.v.text = "2";'),
                                       check=True))
    assert module_result(again, 'task')['action'] == 'reload'
    assert 'rolled back or changed by hand' in ' '.join(module_result(again, 'task')['reasons'])


def test_recreate_keeps_addresses(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX, host_address='10.233.9.1', local_address='10.233.9.2')))
    fresh.exec('host1', 'touch', '/var/lib/nixos-containers/web/marker', check=True)
    run = fresh.playbook(module_play(dict(name='web', config=NGINX, recreate=True)))
    assert run.rc == 0, run.stdout
    assert module_result(run, 'task')['action'] == 'recreate'
    assert fresh.exec('host1', 'test', '-e', '/var/lib/nixos-containers/web/marker').returncode == 1
    assert 'LOCAL_ADDRESS=10.233.9.2\n' in conf_of(fresh, 'web')
    assert http_from_host(fresh, '10.233.9.2').startswith('web generation 1')


def test_allocation_avoids_prefixed_and_live_addresses(fresh):
    # The CLI's allocator would hand out 10.233.1.x again (facts §4, P-3); ours must not.
    fresh.exec('host1', 'sh', '-c', 'printf "PRIVATE_NETWORK=1\\nHOST_ADDRESS=10.233.1.1/24\\n'
               'LOCAL_ADDRESS=10.233.1.2/24\\nHOST_BRIDGE=\\nHOST_PORT=\\nAUTO_START=0\\n" '
               '> /etc/nixos-containers/other.conf', check=True)
    fresh.exec('host1', 'sh', '-c', 'ip link add nfprobe type veth peer name nfprobe-p && ip addr add 10.233.2.1/32 dev nfprobe',
               check=True)
    try:
        run = fresh.playbook(module_play(dict(name='web', config=NGINX, state='present')))
        assert run.rc == 0, run.stdout
        assert 'HOST_ADDRESS=10.233.3.1\nLOCAL_ADDRESS=10.233.3.2\n' in conf_of(fresh, 'web')
    finally:
        fresh.exec('host1', 'ip', 'link', 'del', 'nfprobe')
        fresh.exec('host1', 'rm', '-f', '/etc/nixos-containers/other.conf')


BAD_INPUTS = [
    (dict(name='bad_name'), 'underscore'),
    (dict(name='waytoolongname'), 'at most 11'),
    (dict(name='-x'), 'name'),
    (dict(name='web', host_address='10.233.1.300', local_address='10.233.1.2'), 'host_address'),
    (dict(name='web', forward_ports=[dict(host_port=70000)]), 'outside 1..65535'),
    (dict(name='web', bind_mounts=[dict(mount_point='/a b')]), 'bind_mounts'),
    (dict(name='web', config='services.nginx.enable = true'), 'does not parse'),
    (dict(name='web', config=NGINX, flake='x#y'), 'mutually exclusive'),
    (dict(name='web', extra_flags=['--setenv=A=$(id)']), 'extra_flags'),
    # A new container has no generation to roll back to: refused, not created.
    (dict(name='new', config=NGINX, rollback=True), 'no generation'),
    # timeout(1) refuses a negative duration only after the container was created.
    (dict(name='new', config=NGINX, start_timeout=-5), 'start_timeout'),
    (dict(name='web', start_timeout=0), 'start_timeout'),
]


@pytest.mark.parametrize('task_args,needle', BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_fails_before_any_change(fresh, task_args, needle):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    before = host_state(fresh, 'host1')
    run = fresh.playbook(module_play(task_args, ignore_errors=True))
    result = module_result(run, 'task')
    assert result['failed'], result
    assert needle in result['msg'], result['msg']
    assert 'Traceback' not in json.dumps(result)
    assert host_state(fresh, 'host1') == before


def test_check_mode_changes_nothing(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    # A second generation, so that the rollback below has one to go back to.
    fresh.playbook(module_play(dict(name='web', config=NGINX + ' environment.etc.g.text = "2";')))
    before = host_digest(fresh, 'host1')
    for args in (dict(name='new', config=NGINX), dict(name='web', state='absent'),
                 dict(name='web', config=NGINX + ' networking.firewall.enable = false;'),
                 dict(name='web', config=NGINX, forward_ports=[dict(host_port=81, container_port=80)]),
                 dict(name='web', state='stopped'), dict(name='web', rollback=True, config=NGINX)):
        run = fresh.playbook(module_play(args, check=True), diff=True)
        assert run.rc == 0, run.stdout
        assert module_result(run, 'task')['changed'], args
    assert host_digest(fresh, 'host1') == before


def test_diff_shows_conf_and_configuration(fresh):
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    run = fresh.playbook(module_play(dict(name='web', config=NGINX, forward_ports=[dict(host_port=8080)]),
                                     check=True), diff=True)
    diff = module_result(run, 'task')['diff']
    conf_diff = [d for d in diff if d['before_header'].endswith('web.conf')][0]
    assert 'HOST_PORT=\n' in conf_diff['before'] and 'HOST_PORT=tcp:8080:8080\n' in conf_diff['after']
    assert '+HOST_PORT=tcp:8080:8080' in run.stdout


def test_declarative_container_is_never_modified(fresh):
    # As NixOS writes it: a read-only file in the store, linked from the conf directory.
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /nix/store/decl && printf "PRIVATE_NETWORK=1\\n'
               'HOST_ADDRESS=10.233.50.1\\nLOCAL_ADDRESS=10.233.50.2\\n" > /nix/store/decl/decl.conf && '
               'chmod 0444 /nix/store/decl/decl.conf && '
               'ln -s /nix/store/decl/decl.conf /etc/nixos-containers/decl.conf', check=True)
    try:
        before = host_state(fresh, 'host1')
        run = fresh.playbook(module_play(dict(name='decl', state='absent'), ignore_errors=True))
        assert 'declarative' in module_result(run, 'task')['msg']
        run = fresh.playbook(module_play(dict(name='decl', forward_ports=[dict(host_port=99)]),
                                         ignore_errors=True))
        assert 'declarative' in module_result(run, 'task')['msg']
        assert host_state(fresh, 'host1') == before
    finally:
        fresh.exec('host1', 'rm', '-rf', '/etc/nixos-containers/decl.conf', '/nix/store/decl')


def test_a_declarative_container_without_addresses_can_be_started(fresh):
    # Issue 12: a private network with no address (NixOS allows it: the guest configures a moved
    # interface, say) and nothing else given: the plan is a start, not an allocation to refuse.
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /nix/store/decl && printf "PRIVATE_NETWORK=1\\nINTERFACES=\\n" '
               '> /nix/store/decl/decl.conf && chmod 0444 /nix/store/decl/decl.conf && '
               'ln -s /nix/store/decl/decl.conf /etc/nixos-containers/decl.conf', check=True)
    try:
        before = host_state(fresh, 'host1')
        run = fresh.playbook(module_play(dict(name='decl', state='started'), check=True, ignore_errors=True))
        result = module_result(run, 'task')
        assert not result.get('failed') and result['plan']['steps'] == ['start'], result
        assert host_state(fresh, 'host1') == before
    finally:
        fresh.exec('host1', 'rm', '-rf', '/etc/nixos-containers/decl.conf', '/nix/store/decl')


def test_config_file_content_change_rebuilds(fresh):
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /srv && echo "{ services.nginx.enable = true; }" > /srv/web.nix',
               check=True)
    run = fresh.playbook(four_step_play(dict(name='web', config_file='/srv/web.nix')))
    assert_four_steps(run)
    fresh.exec('host1', 'sh', '-c', 'echo "{ services.nginx.enable = true; services.openssh.enable = true; }"'
               ' > /srv/web.nix', check=True)
    run = fresh.playbook(module_play(dict(name='web', config_file='/srv/web.nix')))
    result = module_result(run, 'task')
    assert result['action'] == 'reload'
    assert result['reasons'] == ['the content of config_file changed']
    assert result['generation_after'] == 2


def test_private_network_false_uses_host_network(fresh):
    run = fresh.playbook(four_step_play(dict(name='hostnet', private_network=False, config=NGINX)))
    assert_four_steps(run)
    conf = conf_of(fresh, 'hostnet')
    assert conf.startswith('PRIVATE_NETWORK=0\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n')
    assert 've-hostnet' not in links(fresh)
    assert http_from_host(fresh, '127.0.0.1').startswith('hostnet generation 1')


def test_start_failure_reports_clearly(fresh):
    fresh.fault('host1', 'start-fail', 'web')
    run = fresh.playbook(module_play(dict(name='web', config=NGINX), ignore_errors=True))
    result = module_result(run, 'task')
    assert result['failed']
    assert 'could not start' in result['msg']
    assert result['cmd'][-2:] == ['start', 'web']
    assert result['rc'] != 0
    # What had been done is reported: the container was created.
    assert any(argv[1:3] == ['create', 'web'] for argv in result['actions'])


FLAKE_NIX = '''{
  outputs = { self, nixpkgs }: {
    nixosConfigurations.web = nixpkgs.lib.nixosSystem {
      modules = [ ({ ... }: { boot.isNspawnContainer = true; services.nginx.enable = true; }) ];
    };
    nixosConfigurations.ssh = nixpkgs.lib.nixosSystem {
      modules = [ ({ ... }: { boot.isNspawnContainer = true; services.openssh.enable = true; }) ];
    };
  };
}
'''


def test_flake_remembers_the_attribute(fresh):
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /srv/flk && cat > /srv/flk/flake.nix', input=FLAKE_NIX, check=True)
    run = fresh.playbook(four_step_play(dict(name='fl', flake='/srv/flk#web')))
    assert_four_steps(run)
    conf = conf_of(fresh, 'fl')
    assert 'FLAKE=/srv/flk\n' in conf and 'NIXFLEET_FLAKE_ATTR=web\n' in conf
    assert http_from_host(fresh, '10.233.1.2').startswith('fl generation 1')
    # P-12: no `.tmp` GC-root link left in root's home (or anywhere the module ran).
    assert fresh.exec('host1', 'test', '-e', '/root/.tmp').returncode == 1
    run = fresh.playbook(module_play(dict(name='fl', flake='/srv/flk#ssh')))
    result = module_result(run, 'task')
    assert result['action'] == 'reload'
    assert "NIXFLEET_FLAKE_ATTR changes from 'web' to 'ssh'" in result['reasons']
    assert ['--flake', '/srv/flk#ssh'] == result['actions'][0][-2:]
    assert 'NIXFLEET_FLAKE_ATTR=ssh\n' in conf_of(fresh, 'fl')


def test_system_path_switches_the_profile(fresh):
    fresh.playbook(module_play(dict(name='src', config=NGINX + ' environment.etc.v.text = "src";', state='present')))
    store_path = fresh.exec('host1', 'readlink', '-f', '/nix/var/nix/profiles/per-container/src/system',
                            check=True).stdout.strip()
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    run = fresh.playbook(four_step_play(dict(name='web', system_path=store_path)))
    assert_four_steps(run)
    result = module_result(run, 'step2 real')
    assert result['plan']['steps'] == ['set_system', 'reload']
    assert result['generation_after'] == 2
    assert fresh.exec('host1', 'readlink', '-f', '/nix/var/nix/profiles/per-container/web/system',
                      check=True).stdout.strip() == store_path
    assert http_from_host(fresh, '10.233.2.2').startswith('web generation 2')


def test_system_path_with_the_config_it_was_built_from_records_that_config(fresh):
    src = NGINX + ' environment.etc.v.text = "src";'
    fresh.playbook(module_play(dict(name='src', config=src, state='present')))
    store_path = fresh.exec('host1', 'readlink', '-f', '/nix/var/nix/profiles/per-container/src/system',
                            check=True).stdout.strip()
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    run = fresh.playbook(four_step_play(dict(name='web', system_path=store_path, config=src)))
    assert_four_steps(run)
    assert module_result(run, 'step2 real')['plan']['steps'] == ['set_system', 'write_configuration', 'reload']
    web, source = (fresh.exec('host1', 'cat', '/var/lib/nixos-containers/%s/etc/nixos/configuration.nix' % name,
                              check=True).stdout for name in ('web', 'src'))
    # the same template text (the host name is each container's own)
    assert web == source.replace('mkDefault "src"', 'mkDefault "web"') and 'environment.etc.v.text = "src";' in web
    conf = fresh.exec('host1', 'cat', '/etc/nixos-containers/web.conf', check=True).stdout
    assert 'NIXFLEET_SYSTEM=%s\n' % store_path in conf
    # a run with that config alone builds nothing: the container is at it
    run = fresh.playbook(module_play(dict(name='web', config=src)))
    assert module_result(run, 'task')['changed'] is False, module_result(run, 'task')


def test_options_left_unset_keep_the_containers_values(fresh):
    # Issue 12: "Options left unset must keep the container's values, and must never block a
    # start or stop": private_network is not given here, so the host network stays.
    fresh.playbook(module_play(dict(name='hostnet', private_network=False, config=NGINX, state='stopped')))
    conf = fresh.exec('host1', 'cat', '/etc/nixos-containers/hostnet.conf', check=True).stdout
    run = fresh.playbook(four_step_play(dict(name='hostnet', state='started')))
    assert_four_steps(run)
    assert module_result(run, 'step2 real')['plan']['steps'] == ['start']
    assert fresh.exec('host1', 'cat', '/etc/nixos-containers/hostnet.conf', check=True).stdout == conf
