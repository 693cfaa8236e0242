"""nixos_containers removes the shared systems no container uses any more (prune_systems).

Read on the lab host: the profile links under /nix/var/nix/profiles/nixfleet-systems (the emulated
nix-env writes them as Nix does), the configurations in /var/lib/nixfleet/systems and the
containers' own profiles.
"""

from test_build_once import NGINX, SSH, run, system_of
from test_nixos_containers import containers_play, result_of

SHARED = '/nix/var/nix/profiles/nixfleet-systems'
CONFIGS = '/var/lib/nixfleet/systems'
GONE = 'environment.etc.gone.text = "destroyed later";'
HTTPD = 'services.httpd.enable = true;'
FRESH = 'environment.etc.fresh.text = "built by a concurrent run";'


def shared_links(lab):
    """{key: sorted names of its links} and the keys with a configuration, as on the host."""
    listing = lab.exec('host1', 'sh', '-c', 'ls %s; echo --; ls %s' % (SHARED, CONFIGS), check=True).stdout
    links, configs = listing.split('--')
    keys = {}
    for name in links.split():
        keys.setdefault(name[:32], []).append(name)
    return dict((k, sorted(v)) for k, v in keys.items()), sorted(name[:-4] for name in configs.split())


def age(lab, key, seconds):
    """Make KEY's links and configuration look last touched SECONDS ago (touch -h: the links themselves)."""
    lab.exec('host1', 'sh', '-c', 'touch -h -d "@$(($(date +%%s) - %d))" %s/%s %s/%s-*-link %s/%s.nix'
             % (seconds, SHARED, key, SHARED, key, CONFIGS, key), check=True)


def key_of(systems, path):
    return [key for key, value in systems.items() if value == path][0]


def test_an_unused_old_system_is_pruned_and_a_used_a_fresh_and_a_rolled_back_one_stay(fresh):
    fleet = [dict(name='a', config=NGINX, state='present'), dict(name='b', config=SSH, state='present'),
             dict(name='gone', config=GONE, state='present')]
    done, result = run(fresh, fleet)
    assert done.rc == 0, str(done)
    assert len(result['systems']) == 3
    systems = dict(result['systems'])
    nginx, ssh, gone = (key_of(systems, system_of(fresh, n)) for n in ('a', 'b', 'gone'))

    # a moves to httpd and is rolled back: its httpd system is only a generation of its own profile.
    done, result = run(fresh, [dict(name='a', config=HTTPD, state='present')])
    assert done.rc == 0, str(done)
    httpd = key_of(result['systems'], system_of(fresh, 'a'))
    done, result = run(fresh, [dict(name='a', config=NGINX, rollback=True, state='present')])
    assert done.rc == 0 and key_of(systems, system_of(fresh, 'a')) == nginx, str(done)

    # gone is destroyed: its system is no container's any more.
    done, result = run(fresh, [dict(name='gone', state='absent')])
    assert done.rc == 0, str(done)
    # A concurrent run's fresh build that its batches have not set yet.
    done, result = run(fresh, [dict(name='later', config=FRESH, state='present')], build_only=True)
    assert done.rc == 0, str(done)
    later = list(result['systems'])[0]
    keys = (nginx, ssh, httpd, gone)
    for key in keys:
        age(fresh, key, 2 * 86400)
    links, configs = shared_links(fresh)
    assert sorted(links) == sorted(keys + (later,)) and configs == sorted(links)
    assert links[gone] == [gone, gone + '-1-link']

    # --check --diff shows the prune and removes nothing.
    gone_path = fresh.exec('host1', 'readlink', '-f', '%s/%s' % (SHARED, gone), check=True).stdout.strip()
    done = fresh.playbook(containers_play(dict(containers=[fleet[0], fleet[1]]), check=True), diff=True)
    result = result_of(done, 'set')
    assert done.rc == 0 and result['changed'] and result.get('pruned_systems') == {gone: [gone_path]}, str(done)
    assert any(d.get('before_header') == SHARED and gone in d['before'] for d in result['diff'])
    assert shared_links(fresh) == (links, configs)

    # The real run: gone's profile, its generations and its configuration go; the rest stay.
    done, result = run(fresh, [fleet[0], fleet[1]])
    assert done.rc == 0 and result['changed'] and result.get('pruned_systems') == {gone: [gone_path]}, str(done)
    after_links, after_configs = shared_links(fresh)
    assert sorted(after_links) == sorted((nginx, ssh, httpd, later))
    assert after_configs == sorted(after_links)
    assert after_links[httpd] == links[httpd]
    # The store path itself stays until the garbage collector runs.
    fresh.exec('host1', 'test', '-d', gone_path, check=True)

    # Idempotent: nothing left to prune.
    done, result = run(fresh, [fleet[0], fleet[1]])
    assert done.rc == 0 and not result['changed'] and result.get('pruned_systems') == {}, str(done)

    # A grace of 0 takes the fresh build too; prune_systems=false keeps everything.
    done, result = run(fresh, [fleet[0], fleet[1]], prune_systems=False, prune_systems_grace=0)
    assert done.rc == 0 and result.get('pruned_systems') == {} and later in shared_links(fresh)[0], str(done)
    done, result = run(fresh, [fleet[0], fleet[1]], prune_systems_grace=0)
    assert done.rc == 0 and list(result.get('pruned_systems')) == [later], str(done)
    assert sorted(shared_links(fresh)[0]) == sorted((nginx, ssh, httpd))


def test_a_negative_grace_fails_naming_the_parameter_before_anything_changes(fresh):
    done, result = run(fresh, [dict(name='a', config=NGINX, state='present')], ignore_errors=True,
                       prune_systems_grace=-1)
    assert result['failed'] and 'prune_systems_grace' in result['msg'], str(done)
    assert fresh.exec('host1', 'nixos-container', 'list', check=True).stdout.strip() == ''


def test_a_recreated_containers_previous_system_stays_for_the_undo(fresh):
    """The role's undo of a recreate sets the system from before the run again by system_path."""
    done, result = run(fresh, [dict(name='r', config=GONE, state='present')])
    assert done.rc == 0, str(done)
    before = system_of(fresh, 'r')
    key = key_of(result['systems'], before)
    age(fresh, key, 2 * 86400)
    done, result = run(fresh, [dict(name='r', config=FRESH, recreate=True, state='present')])
    assert done.rc == 0, str(done)
    # A new profile: no generation of r holds the old system, the shared profile is its only root.
    assert fresh.exec('host1', 'ls', '/nix/var/nix/profiles/per-container/r', check=True).stdout.split() == [
        'system', 'system-1-link']
    assert system_of(fresh, 'r') != before
    assert result.get('pruned_systems') == {} and key in shared_links(fresh)[0], str(done)
    done, result = run(fresh, [dict(name='r', system_path=before, state='present')])
    assert done.rc == 0 and system_of(fresh, 'r') == before, str(done)
