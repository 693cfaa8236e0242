"""container_fleet prunes the shared systems no container uses any more (container_fleet_prune_systems):
on each host in its batch calls, on the build host after the last batch. Read on the lab hosts:
the profile links under /nix/var/nix/profiles/nixfleet-systems and the configurations beside them."""

from test_container_fleet import NGINX_ON, rollout, system, web

SHARED = '/nix/var/nix/profiles/nixfleet-systems'
CONFIGS = '/var/lib/nixfleet/systems'
SSH = 'services.openssh.enable = true;'
GONE = 'environment.etc.gone.text = "removed by exclusive";'
CHANGED = NGINX_ON + '\nenvironment.etc.release.text = "2";'


def shared(lab, host):
    """{store path: key} of HOST's shared profiles (the system each profile link points at now)."""
    text = lab.exec(host, 'sh', '-c', 'cd %s 2>/dev/null || exit 0; for k in *[!k]; do [ -L "$k" ] && '
                    'echo "$k $(readlink -f "$k")"; done' % SHARED, check=True).stdout
    return dict(reversed(line.split()) for line in text.splitlines() if line.strip())


def age_everything(lab, host, seconds=2 * 86400):
    lab.exec(host, 'sh', '-c', 'for f in %s/* %s/*; do [ -e "$f" ] || [ -L "$f" ] || continue; '
             'touch -h -d "@$(($(date +%%s) - %d))" "$f"; done' % (SHARED, CONFIGS, seconds), check=True)


def test_the_rollout_prunes_unused_old_systems_on_the_hosts_and_the_build_host(fresh, tmp_path):
    fleet = dict(host1=[web(), dict(name='ssh', config=SSH), dict(name='old', config=GONE)],
                 host2=[web()])
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_build_host='host3')
    assert run.rc == 0 and summary['result'] == 'success', str(run)
    nginx, ssh, gone = (system(fresh, 'host1', name=n) for n in ('web', 'ssh', 'old'))
    # Fresh: this rollout's systems are all kept, also on the build host that has no container.
    assert set(shared(fresh, 'host3')) == {nginx, ssh, gone}
    assert set(shared(fresh, 'host1')) == {nginx, ssh, gone} and set(shared(fresh, 'host2')) == {nginx}
    for host in ('host1', 'host2', 'host3'):
        age_everything(fresh, host)

    # A day later: web changes on host1 and host2, old goes (exclusive).
    fleet = dict(host1=[web(CHANGED), dict(name='ssh', config=SSH)], host2=[web(CHANGED)])
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_build_host='host3', container_fleet_exclusive=True)
    assert run.rc == 0 and summary['result'] == 'success', str(run)
    changed = system(fresh, 'host1', name='web')
    assert changed not in (nginx, ssh, gone)
    # host1: old's system is no container's any more; nginx stays (web's previous generation, for a
    # rollback), ssh is used, the new system is this rollout's.
    assert set(shared(fresh, 'host1')) == {nginx, ssh, changed}
    # (host1 imported the closures: the configurations are on the build host only.)
    assert fresh.exec('host1', 'sh', '-c', 'ls %s 2>/dev/null; true' % CONFIGS, check=True).stdout.split() == []
    assert system(fresh, 'host1', link='system-1-link', name='web') == nginx
    assert set(shared(fresh, 'host2')) == {nginx, changed}
    # The build host has no container: only this rollout's fresh build stays, with its configuration.
    assert set(shared(fresh, 'host3')) == {changed}
    keys = fresh.exec('host3', 'sh', '-c', 'ls %s' % CONFIGS, check=True).stdout.split()
    assert keys == [shared(fresh, 'host3')[changed] + '.nix']
