"""Helpers for the module tests: host state fingerprints, module plays, the four-step idempotence run."""

import hashlib
import json
import textwrap


# Everything a nixos_container run may change on a host, printed in a stable order.
_STATE_SCRIPT = r'''
import json, os, subprocess
out = {}
# A running guest writes into its own root (/etc/passwd at activation, logs) whenever it
# likes: of the state directory, only the roots and each configuration.nix are the host's.
for top in ("/var/lib/nixos-containers",):
    for name in sorted(os.listdir(top)):
        config = os.path.join(top, name, "etc/nixos/configuration.nix")
        out[os.path.join(top, name)] = open(config).read() if os.path.isfile(config) else "no configuration.nix"
# /etc/nixos/containers: nixos_container_declarative's files (not the rest of /etc/nixos, which tests edit).
for top in ("/etc/nixos-containers", "/nix/var/nix/profiles/per-container",
            "/nix/var/nix/gcroots/per-container", "/etc/nixos/containers"):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for entry in sorted(dirs + files):
            path = os.path.join(root, entry)
            st = os.lstat(path)
            if os.path.islink(path):
                out[path] = "link:" + os.readlink(path)
            elif os.path.isdir(path):
                out[path] = "dir:%o" % st.st_mode
            else:
                with open(path, "rb") as f:
                    out[path] = "file:%o:%s" % (st.st_mode, f.read().hex())
def ipj(*args):
    return json.loads(subprocess.run(["ip", "-j"] + list(args), capture_output=True, text=True).stdout or "[]")
# The administrative state (the UP flag) is what the host side sets; the operational state of a
# veth follows its guest end, which a booting guest brings up whenever it gets there.
out["links"] = sorted((l["ifname"], l.get("ifindex"), "UP" in l.get("flags", [])) for l in ipj("link", "show"))
# IPv6 link-local addresses and their routes appear on their own a moment after a link is
# up (kernel autoconfiguration, not anything a module did): leave them out.
def ours(entry):
    dst = entry.get("dst", "") + entry.get("local", "")
    return not (dst.startswith("fe80") or dst.startswith("ff00") or entry.get("scope") == "link" and ":" in dst)
out["addrs"] = sorted((l["ifname"], a["local"], a["prefixlen"]) for l in ipj("addr", "show")
                      for a in l.get("addr_info", []) if ours(a))
out["routes"] = sorted(json.dumps(r, sort_keys=True) for r in ipj("route", "show", "table", "all") if ours(r))
# the container units the host's systemd has running, starting or failed (an inactive one may be
# unloaded by systemd at any time, so it is left out)
units = subprocess.run(["systemctl", "list-units", "container@*", "--all", "--plain", "--no-legend",
                        "--state=active,activating,deactivating,reloading,failed"],
                       capture_output=True, text=True)
out["units"] = sorted(tuple(line.split()[:4]) for line in units.stdout.splitlines() if line.strip()) \
    if units.returncode == 0 else "systemctl failed: " + units.stderr.strip()
# The NAT module's share: the ruleset (stateless -s: no counters, which traffic moves) and
# the forwarding sysctls it sets (facts §7).
nft = subprocess.run(["nft", "-s", "-j", "list", "ruleset"], capture_output=True, text=True)
out["nft"] = [e for e in json.loads(nft.stdout or '{"nftables": []}')["nftables"] if "metainfo" not in e] \
    if nft.returncode == 0 else "nft failed: " + nft.stderr.strip()
for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
    with open("/proc/sys/" + key) as f:
        out["sysctl " + key.replace("/", ".")] = f.read().strip()
print(json.dumps(out, sort_keys=True))
'''


def host_state(lab, host):
    """A JSON text of everything nixos_container (and the other modules) could change on the host."""
    proc = lab.exec(host, '/usr/bin/python3', '-c', _STATE_SCRIPT, check=True)
    return proc.stdout


def host_digest(lab, host):
    return hashlib.sha256(host_state(lab, host).encode()).hexdigest()


def container_task(name='web', **options):
    args = dict(name=name)
    args.update(options)
    return args


def four_step_play(task_args, host='host1', module='nixos_container'):
    """check -> real -> repeat -> repeat in check, each registered (the community.docker discipline)."""
    args = json.dumps(task_args)
    return textwrap.dedent('''
        - hosts: {host}
          gather_facts: false
          tasks:
            - name: step1 check
              nixfleet.containers.{module}: {args}
              check_mode: true
            - name: step2 real
              nixfleet.containers.{module}: {args}
            - name: step3 repeat
              nixfleet.containers.{module}: {args}
            - name: step4 repeat in check
              nixfleet.containers.{module}: {args}
              check_mode: true
    ''').format(host=host, args=args, module=module)


def module_play(task_args, host='host1', check=False, name='task', ignore_errors=False, module='nixos_container'):
    lines = ['- hosts: %s' % host, '  gather_facts: false', '  tasks:',
             '    - name: %s' % name,
             '      nixfleet.containers.%s: %s' % (module, json.dumps(task_args))]
    if check:
        lines.append('      check_mode: true')
    if ignore_errors:
        lines.append('      ignore_errors: true')
    return '\n'.join(lines) + '\n'


def bad_play(module, cases, host='host1'):
    """One play, one failing task per case (ignore_errors), named bad0, bad1, ..."""
    lines = ['- hosts: %s' % host, '  gather_facts: false', '  tasks:']
    for index, args in enumerate(cases):
        lines += ['    - name: bad%d' % index, '      nixfleet.containers.%s: %s' % (module, json.dumps(args)),
                  '      ignore_errors: true']
    return '\n'.join(lines) + '\n'


def four_step_changes(run, host='host1'):
    assert run.rc == 0, str(run)
    return tuple(run.result(host, 'step%d %s' % (i + 1, label))['changed']
                 for i, label in enumerate(('check', 'real', 'repeat', 'repeat in check')))


def module_result(run, task, host='host1'):
    """The module's own result dict of TASK on HOST, with changed/failed as Ansible saw them."""
    record = run.result(host, task)
    result = dict(record['result'])
    result.update(changed=record['changed'], failed=record['failed'])
    return result


def assert_four_steps(run, host='host1', expect=(True, True, False, False)):
    got = four_step_changes(run, host)
    assert got == tuple(expect), got
