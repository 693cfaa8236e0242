"""nixos_container_info against the lab: what it reports matches the host."""

from host_checks import module_play, module_result

INFO_PLAY = '''
- hosts: host1
  gather_facts: false
  tasks:
    - name: all
      nixfleet.containers.nixos_container_info:
    - name: one
      nixfleet.containers.nixos_container_info:
        name: web
    - name: missing
      nixfleet.containers.nixos_container_info:
        name: nosuch
'''


def test_info_reports_what_the_host_has(fresh):
    fresh.playbook(module_play(dict(name='web', config='services.nginx.enable = true;',
                                    forward_ports=[dict(host_port=8080, container_port=80)],
                                    bind_mounts=[dict(mount_point='/data', host_path='/srv')])))
    fresh.playbook(module_play(dict(name='idle', config='', state='stopped')))
    fresh.playbook(module_play(dict(name='web', config='services.nginx.enable = true; a.b = 1;',
                                    forward_ports=[dict(host_port=8080, container_port=80)])))
    run = fresh.playbook(INFO_PLAY, check=True)
    assert run.rc == 0, str(run)
    every = module_result(run, 'all')
    assert [c['name'] for c in every['containers']] == ['idle', 'web']
    assert not every['changed']
    web = module_result(run, 'one')
    assert web['exists'] is True
    facts = web['container']
    leader = fresh.exec('host1', 'machinectl', 'show', 'web', '-p', 'Leader', '--value', check=True).stdout.strip()
    show_ip = fresh.exec('host1', 'nixos-container', 'show-ip', 'web', check=True).stdout.strip()
    assert facts['local_address'] == show_ip == '10.233.1.2'
    assert (facts['state'], facts['active_state'], facts['kind']) == ('up', 'active', 'imperative')
    assert facts['leader_pid'] == int(leader)
    assert facts['forward_ports'] == [dict(protocol='tcp', host_port=8080, container_port=80)]
    assert facts['bind_mounts'] == [dict(mount_point='/data', host_path='/srv', read_only=True)]
    assert facts['configuration'] == 'services.nginx.enable = true; a.b = 1;'
    assert facts['generation'] == 2 and [g['number'] for g in facts['generations']] == [1, 2]
    idle = [c for c in every['containers'] if c['name'] == 'idle'][0]
    assert (idle['state'], idle['active_state']) == ('down', 'inactive')
    assert 'leader_pid' not in idle
    missing = module_result(run, 'missing')
    assert (missing['exists'], missing['container'], missing['containers']) == (False, {}, [])


def test_nixos_container_bin_is_deprecated_with_a_warning(lab):
    """The module never runs nixos-container: the option does nothing, so Ansible says so."""
    run = lab.playbook('''
- hosts: host1
  gather_facts: false
  tasks:
    - name: bin
      nixfleet.containers.nixos_container_info:
        name: nosuch
        nixos_container_bin: /nonexistent/nixos-container
    - name: without
      nixfleet.containers.nixos_container_info:
        name: nosuch
''')
    assert run.rc == 0, str(run)
    given = module_result(run, 'bin')
    deprecations = given.get('deprecations', [])
    assert len(deprecations) == 1 and 'nixos_container_bin' in deprecations[0]['msg'], given
    assert deprecations[0]['version'] == '1.0.0'
    assert given['exists'] is False
    assert not module_result(run, 'without').get('deprecations'), module_result(run, 'without')
