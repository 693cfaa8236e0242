"""The fault soak (issue 13): random fleet changes rolled out through the roles while a random
fault hits, then the invariants checked on every host. `make soak ROUNDS=200 SEED=1234`.

Each round changes the fleet spec at random (add, remove, change the guest configuration,
change or drop a forwarded port, stop or start), rolls it out with playbooks/rollout.yml (the
container_fleet role, as a user runs it) while one fault is injected, clears the faults and
checks every host:

- every container is either at the new spec (and healthy when it runs an HTTP service) or
  exactly as it was before the round (conf, configuration.nix, system, run state);
- the faults that cannot stop a change (slow start, a concurrent second run, a kill -9
  followed by the user's re-run) leave every container at the new spec, and an unreachable
  host stops the rollout before any change;
- no two containers of a host share an address or a host port;
- nothing leaked: no ve-/vb- link, route, nft port forward or masquerade entry, conf, state
  directory, profile, gcroot, hosts entry or container@ unit without its container;
- the summary JSON of the run says what the hosts show (created/updated/unchanged: the new
  spec; rolled_back/pending: the state before; removed: gone).

Faults (tests/lab/labctl fault and the interruption suite's kill): start-fail (labctl's
start-fail for a container the round creates, a bind that nspawn refuses for one it changes),
health-fail, slow-start, unreachable (a host's uplink down), kill-9 (the module on a host,
as soon as it runs a changing nixos-container command; the user then runs the rollout again),
concurrent (two rollouts of the same spec at once).

Deterministic given the seed: the spec changes and the faults come from random.Random(seed)
(each run of six rounds has every fault kind once, in a random order);
after each round the model keeps, per container, the spec the host shows.
Prints one line per round, then rounds, faults per kind and violations; exits 1 on any.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# pylint: disable=wrong-import-position
from conftest import REPO, Lab, labctl, venv_bin  # noqa: E402

NAMES = ("s1", "s2", "s3")
PORTS = (8101, 8102, 8103)
VARIANTS = 4
FAULTS = ("start-fail", "health-fail", "slow-start", "unreachable", "kill-9", "concurrent")
SLOW_START_SECONDS = 3
BAD_BIND = "--bind=/nonexistent-soak:/mnt"
HEALTH = {"http": {"port": 80, "path": "/", "from": "host"}, "retries": 2, "delay": 1, "timeout": 2}
PLAYBOOK = REPO / "playbooks" / "rollout.yml"

# Inside a host: everything the invariants look at, as JSON.
COLLECT = r'''
import json, os, subprocess, urllib.request
def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
def ls(path):
    # nspawn holds /var/lib/nixos-containers/.#NAME.lck while it runs (its image lock)
    return sorted(n for n in os.listdir(path) if not n.startswith(".")) if os.path.isdir(path) else []
out = {"confs": [n[:-5] for n in ls("/etc/nixos-containers") if n.endswith(".conf")],
       "dirs": ls("/var/lib/nixos-containers"),
       "profiles": ls("/nix/var/nix/profiles/per-container"),
       "gcroots": ls("/nix/var/nix/gcroots/per-container"),
       "listed": run("nixos-container", "list").split(),
       "hosts_file": read("/etc/hosts"),
       "links": [l["ifname"] for l in json.loads(run("ip", "-j", "link", "show") or "[]")],
       "routes": [(r.get("dst"), r.get("dev")) for r in json.loads(run("ip", "-j", "route", "show") or "[]")],
       "units": {}, "containers": {}, "forwards": [], "masquerade": []}
for line in run("systemctl", "list-units", "--all", "--plain", "--no-legend", "container@*").splitlines():
    words = line.split()
    if len(words) >= 4:
        out["units"][words[0]] = "%s/%s" % (words[2], words[3])
nft = json.loads(run("nft", "-j", "list", "ruleset") or '{"nftables": []}')["nftables"]
for entry in nft:
    m = entry.get("map") or entry.get("set")
    if not m or m.get("table") != "io.systemd.nat":
        continue
    for elem in m.get("elem", []):
        if m["name"] == "map_port_ipport":
            (proto, port), (addr, cport) = elem[0]["concat"], elem[1]["concat"]
            out["forwards"].append([proto, port, addr, cport])
        elif m["name"] == "masq_saddr":
            out["masquerade"].append(elem if isinstance(elem, str) else json.dumps(elem))
names = sorted(set(out["confs"]) | set(out["dirs"]) | set(out["profiles"]) | set(out["listed"]))
for name in names:
    conf = read("/etc/nixos-containers/%s.conf" % name)
    fields = dict(l.split("=", 1) for l in (conf or "").splitlines() if "=" in l)
    active = run("systemctl", "show", "-p", "ActiveState", "--value", "container@%s.service" % name).strip()
    c = {"conf": conf, "fields": fields, "active": active,
         "configuration": read("/var/lib/nixos-containers/%s/etc/nixos/configuration.nix" % name),
         "system": os.path.realpath("/nix/var/nix/profiles/per-container/%s/system" % name)
                   if os.path.exists("/nix/var/nix/profiles/per-container/%s/system" % name) else None,
         "http": None}
    address = fields.get("LOCAL_ADDRESS", "").split("/")[0]
    if active == "active" and address:
        try:
            with urllib.request.urlopen("http://%s/" % address, timeout=3) as r:
                c["http"] = [r.status, r.read().decode(errors="replace").strip()]
        except Exception as error:
            c["http"] = [getattr(error, "code", 0), str(error)]
    out["containers"][name] = c
print(json.dumps(out))
'''

# Inside a host: wait for the module to run a changing nixos-container command, kill -9 it.
KILLER = r'''
import os, sys, time
verbs = {b"create", b"start", b"stop", b"update", b"destroy", b"restart"}
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
            parent = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[1]
            parent_argv = open("/proc/%s/cmdline" % parent, "rb").read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"nixos-container") for a in argv[:2]) and verbs & set(argv) \
                and parent_argv[0].endswith(b"python3"):
            os.kill(int(parent), 9)
            print("killed %s (%s)" % (parent, b" ".join(argv).decode()))
            sys.exit(0)
    time.sleep(0.05)
print("nothing to kill")
'''


def config_text(variant):
    return 'services.nginx.enable = true;\nenvironment.etc.soak.text = "v%d";' % variant


def render(entry, bad=False):
    """A model entry -> the fleet spec of the container."""
    spec = {"name": entry["name"], "config": config_text(entry["variant"]), "state": entry["state"]}
    if entry["port"]:
        spec["forward_ports"] = [{"host_port": entry["port"], "container_port": 80}]
    if entry["state"] == "started":
        spec["health_check"] = HEALTH
    if bad:
        spec["extra_flags"] = [BAD_BIND]
    return spec


def mutate(rng, model):
    """A new model with 1-3 random changes across the hosts (always a valid spec)."""
    new = {host: {name: dict(entry) for name, entry in entries.items()} for host, entries in model.items()}
    changes = []
    for _change in range(rng.randint(1, 3)):
        host = rng.choice(sorted(new))
        entries = new[host]
        free_ports = [p for p in PORTS if p not in {e["port"] for e in entries.values()}]
        absent = [n for n in NAMES if n not in entries]
        kinds = ["add"] if absent else []
        if entries:
            kinds += ["config", "config", "port", "remove", "state"]
        kind = rng.choice(kinds)
        if kind == "add":
            name = rng.choice(absent)
            entries[name] = {"name": name, "variant": rng.randrange(VARIANTS), "state": "started",
                             "port": rng.choice([None] + free_ports)}
        else:
            name = rng.choice(sorted(entries))
            entry = entries[name]
            if kind == "remove":
                del entries[name]
            elif kind == "config":
                entry["variant"] = (entry["variant"] + rng.randint(1, VARIANTS - 1)) % VARIANTS
            elif kind == "port":
                choices = [p for p in [None] + free_ports if p != entry["port"]]
                entry["port"] = rng.choice(choices)
            else:
                entry["state"] = "stopped" if entry["state"] == "started" else "started"
        changes.append("%s/%s %s" % (host, name, kind))
    return new, changes


def changed_names(model, new):
    """(host, name) of every container whose spec differs between the two models."""
    return sorted((host, name) for host in new
                  for name in set(model[host]) | set(new[host])
                  if model[host].get(name) != new[host].get(name))


class Soak:
    def __init__(self, lab, hosts, rng, workdir, log):
        self.lab, self.hosts, self.rng, self.workdir, self.log = lab, hosts, rng, workdir, log
        self.model = {host: {} for host in hosts}
        self.faults = Counter()
        self.violations = []
        self.rounds = 0
        self.faulted = set()
        self.bag = []
        self.state = None             # the hosts as the last round left them

    # ---- the lab ----------------------------------------------------------------------
    def collect(self):
        """Every host's state (the hosts are read at the same time)."""
        states = {}

        def read(host):
            states[host] = json.loads(self.lab.exec(host, "/usr/bin/python3", "-c", COLLECT,
                                                    check=True, timeout=120).stdout)
        readers = [threading.Thread(target=read, args=(host,)) for host in self.hosts]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        missing = [host for host in self.hosts if host not in states]
        if missing:
            raise RuntimeError("soak: could not read the state of %s" % missing)
        return states

    def rollout(self, spec, tag, bad=None):
        """One ansible-playbook of playbooks/rollout.yml; the summary (None without one)."""
        summary_path = os.path.join(self.workdir, "summary-%s.json" % tag)
        vars_path = os.path.join(self.workdir, "vars-%s.json" % tag)
        fleet = {host: [render(entry, bad=(host, name) == bad) for name, entry in sorted(entries.items())]
                 for host, entries in spec.items()}
        extra = {"soak_fleet": fleet,
                 "container_fleet_containers": "{{ soak_fleet[inventory_hostname] | default([]) }}",
                 "container_fleet_exclusive": True, "container_fleet_batches": ["100%"],
                 "container_fleet_summary_path": summary_path}
        with open(vars_path, "w", encoding="utf-8") as stream:
            json.dump(extra, stream)
        if os.path.exists(summary_path):
            os.unlink(summary_path)
        argv = [venv_bin("ansible-playbook"), str(PLAYBOOK), "--limit", ",".join(self.hosts),
                "--extra-vars", "@" + vars_path]
        with open(os.path.join(self.workdir, "run-%s.log" % tag), "w", encoding="utf-8") as out:
            completed = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900,
                                       env=self.lab.ansible_environment(), cwd=REPO)
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path, encoding="utf-8") as stream:
                summary = json.load(stream)
        return completed.returncode, summary

    def fault(self, host, *words):
        self.faulted.add(host)
        self.lab.fault(host, *words)

    def clear_faults(self, every=False):
        for host in self.hosts if every else sorted(self.faulted):
            self.lab.fault(host, "clear")
        self.faulted = set()

    # ---- one round ------------------------------------------------------------------
    def round(self, number):
        rng = self.rng
        new, changes = mutate(rng, self.model)
        changed = changed_names(self.model, new)
        # every run of six rounds has each fault once, in a random order (a short run sees them all)
        if not self.bag:
            self.bag = list(FAULTS)
            rng.shuffle(self.bag)
        kind = self.bag.pop()
        started = time.monotonic()
        before = self.state or self.collect()
        tag = "%04d" % number
        bad, expect, note, summaries = None, "either", "", []
        # a target for the faults that hit one container: one the round changes and runs
        running = [(h, n) for h, n in changed if n in new[h] and new[h][n]["state"] == "started"]
        target = rng.choice(running) if running else None
        if kind in ("start-fail", "health-fail", "slow-start") and target is None:
            # make a change that starts a container, so the fault has something to hit
            host = rng.choice(self.hosts)
            name = rng.choice(sorted(new[host])) if new[host] else rng.choice(NAMES)
            entry = new[host].setdefault(name, {"name": name, "variant": 0, "state": "started", "port": None})
            entry["state"] = "started"
            entry["variant"] = (entry["variant"] + 1) % VARIANTS
            changes.append("%s/%s config" % (host, name))
            changed = changed_names(self.model, new)
            target = (host, name)
        if kind == "start-fail":
            host, name = target
            if name in self.model[host]:
                bad = target                       # nspawn refuses the new spec's bind
                note = "bad bind for %s/%s" % target
            else:
                self.fault(host, "start-fail", name)
                note = "labctl start-fail %s/%s" % target
            rc, summary = self.rollout(new, tag, bad=bad)
            summaries.append(summary)
        elif kind == "health-fail":
            self.fault(target[0], "health-fail", target[1])
            note = "%s/%s" % target
            rc, summary = self.rollout(new, tag)
            summaries.append(summary)
        elif kind == "slow-start":
            self.fault(target[0], "slow-start", target[1], str(SLOW_START_SECONDS))
            note = "%s/%s %ss" % (target[0], target[1], SLOW_START_SECONDS)
            expect = "new"
            rc, summary = self.rollout(new, tag)
            summaries.append(summary)
        elif kind == "unreachable":
            host = rng.choice(self.hosts)
            self.fault(host, "unreachable")
            note = host
            expect = "before"
            try:
                rc, summary = self.rollout(new, tag)
            finally:
                self.clear_faults()
            summaries.append(summary)
        elif kind == "kill-9":
            host = changed[0][0] if changed else rng.choice(self.hosts)
            killed = {}
            killer = threading.Thread(target=lambda: killed.update(result=self.lab.exec(
                host, "/usr/bin/python3", "-c", KILLER, "90", timeout=120)))
            killer.start()
            self.rollout(new, tag + "a")     # the killed run: its summary tells nothing
            killer.join()
            note = "%s: %s" % (host, killed["result"].stdout.strip())
            # the user runs the rollout again after an interrupted one
            self.clear_faults()
            rc, summary = self.rollout(new, tag)
            summaries.append(summary)
            expect = "new"
        else:  # concurrent
            outcome = {}
            second = threading.Thread(target=lambda: outcome.update(b=self.rollout(new, tag + "b")))
            second.start()
            rc, summary = self.rollout(new, tag)
            second.join()
            summaries += [summary, outcome["b"][1]]
            expect = "new"
        self.faults[kind] += 1
        self.clear_faults()
        after = self.state = self.collect()
        found = self.check(new, changed, before, after, summaries, expect, kind)
        self.rounds += 1
        self.log("round %d (%.0f s): %s; fault %s (%s); playbook exit %d; %s" % (
            number, time.monotonic() - started, ", ".join(changes), kind, note, rc,
            "ok" if not found else "%d VIOLATIONS" % len(found)))
        for violation in found:
            self.log("  VIOLATION round %d: %s" % (number, violation))
        self.violations += ["round %d: %s" % (number, v) for v in found]
        self.model = self.settle(new, before, after)
        if found:
            self.recover(number)

    # ---- the invariants -------------------------------------------------------------
    @staticmethod
    def fingerprint(state, name):
        c = state["containers"].get(name)
        if c is None:
            return None
        return (c["conf"], c["configuration"], c["system"], c["active"])

    @staticmethod
    def at_spec(state, entry, name):
        """Why the host's container NAME is not at the model ENTRY ([] when it is)."""
        c = state["containers"].get(name)
        if entry is None:
            return [] if c is None else ["exists"]
        if c is None:
            return ["does not exist"]
        why = []
        if c["configuration"] is None or ('"v%d";' % entry["variant"]) not in c["configuration"]:
            why.append("configuration.nix is not variant %d" % entry["variant"])
        if c["fields"].get("NIXFLEET_SYSTEM") != c["system"]:
            why.append("profile %s, conf says %s" % (c["system"], c["fields"].get("NIXFLEET_SYSTEM")))
        want_port = "tcp:%d:80" % entry["port"] if entry["port"] else ""
        if c["fields"].get("HOST_PORT", "") != want_port:
            why.append("HOST_PORT %r, not %r" % (c["fields"].get("HOST_PORT"), want_port))
        if "--bind" in c["fields"].get("EXTRA_NSPAWN_FLAGS", ""):
            why.append("has the faulty bind")
        want_active = "active" if entry["state"] == "started" else "inactive"
        if c["active"] != want_active:
            why.append("unit %s, not %s" % (c["active"], want_active))
        elif want_active == "active" and (not c["http"] or c["http"][0] != 200
                                          or not c["http"][1].startswith(name + " generation")):
            why.append("unhealthy: %s" % (c["http"],))
        return why

    def check(self, new, changed, before, after, summaries, expect, kind):
        found = []
        for host in self.hosts:
            b, a = before[host], after[host]
            position = {}
            for name in sorted(set(NAMES) | set(a["containers"]) | set(b["containers"])):
                at_new = not self.at_spec(a, new[host].get(name), name)
                at_before = self.fingerprint(a, name) == self.fingerprint(b, name)
                # a container the round did not change is both
                position[name] = {"new"} if at_new else set()
                position[name] |= {"before"} if at_before else set()
                if (host, name) not in changed:
                    if not at_before:
                        found.append("%s/%s: not in the change, but touched: %s -> %s" % (
                            host, name, self.fingerprint(b, name), self.fingerprint(a, name)))
                    continue
                if not at_new and not at_before:
                    found.append("%s/%s: neither at the new spec (%s) nor as before" % (
                        host, name, "; ".join(self.at_spec(a, new[host].get(name), name))))
                elif expect == "new" and not at_new:
                    found.append("%s/%s: a %s fault must not stop the change: %s" % (
                        host, name, kind, "; ".join(self.at_spec(a, new[host].get(name), name))))
                elif expect == "before" and not at_before:
                    found.append("%s/%s: changed although a host was unreachable" % (host, name))
            found += ["%s: %s" % (host, p) for p in self.conflicts_and_leaks(a)]
            for summary in summaries:
                found += ["%s: summary: %s" % (host, p) for p in self.summary_problems(summary, host, position)]
        return found

    @staticmethod
    def conflicts_and_leaks(state):
        problems = []
        names = set(state["containers"])
        for what in ("confs", "dirs", "profiles", "listed"):
            if set(state[what]) != names:
                problems.append("%s %s, containers %s" % (what, state[what], sorted(names)))
        # the unit's start script makes the GC root (shared/nixos-containers.md): a container
        # never started has none
        if not set(state["gcroots"]) <= names:
            problems.append("gcroots %s, containers %s" % (state["gcroots"], sorted(names)))
        running = {n: c for n, c in state["containers"].items() if c["active"] == "active"}
        addresses, ports = Counter(), Counter()
        for name, c in state["containers"].items():
            addresses[c["fields"].get("LOCAL_ADDRESS", "").split("/")[0]] += 1
            for forward in c["fields"].get("HOST_PORT", "").split():
                ports[forward.rsplit(":", 1)[0]] += 1
        problems += ["address %s used %d times" % (k, v) for k, v in addresses.items() if k and v > 1]
        problems += ["host port %s forwarded %d times" % (k, v) for k, v in ports.items() if v > 1]
        for link in state["links"]:
            if link.startswith(("ve-", "vb-")) and link[3:] not in running:
                problems.append("leaked link %s" % link)
        local = {c["fields"].get("LOCAL_ADDRESS", "").split("/")[0]: n for n, c in running.items()}
        for dst, dev in state["routes"]:
            if dst and dst.startswith("10.233.") and local.get(dst.split("/")[0]) is None:
                problems.append("leaked route %s dev %s" % (dst, dev))
        want = sorted(["tcp", int(f.split(":")[1]), c["fields"]["LOCAL_ADDRESS"].split("/")[0], int(f.split(":")[2])]
                      for c in running.values() for f in c["fields"].get("HOST_PORT", "").split())
        if sorted(state["forwards"]) != want:
            problems.append("nft port forwards %s, running containers forward %s" % (sorted(state["forwards"]), want))
        for entry in state["masquerade"]:
            if not any(entry.startswith(a) or a in entry for a in local if a):
                problems.append("leaked masquerade entry %s" % entry)
        for unit, status in state["units"].items():
            name = unit[len("container@"):-len(".service")]
            if name not in names and status != "inactive/dead":
                problems.append("unit %s is %s without its container" % (unit, status))
            elif name in names and status.startswith(("failed", "activating")):
                problems.append("unit %s is %s" % (unit, status))
        for line in (state["hosts_file"] or "").splitlines():
            words = line.split()
            if any(w in NAMES and w not in names for w in words[1:]):
                problems.append("leaked hosts entry %r" % line)
        return problems

    @staticmethod
    def summary_problems(summary, host, position):
        if summary is None:
            return ["no summary was written"]
        record = summary["hosts"].get(host)
        if record is None:
            return ["no record of the host"]
        problems = []
        for name, outcome in record["containers"].items():
            want = {"created": "new", "updated": "new", "unchanged": "new", "removed": "new",
                    "rolled_back": "before", "pending": "before"}.get(outcome["outcome"])
            if want and want not in position.get(name, set()):
                problems.append("%s is %s, but the host shows it %s" % (
                    name, outcome["outcome"], " and ".join(sorted(position.get(name, set()))) or "in neither state"))
        return problems

    def settle(self, new, before, after):
        """The model after the round: per container, the spec the host shows."""
        model = {}
        for host in self.hosts:
            model[host] = {}
            for name in NAMES:
                if not self.at_spec(after[host], new[host].get(name), name):
                    entry = new[host].get(name)
                else:
                    entry = self.model[host].get(name)
                if entry is not None:
                    model[host][name] = dict(entry)
        return model

    def recover(self, number):
        """After a violation: converge the model's spec without faults (or start from nothing)."""
        self.state = None
        rc = self.rollout(self.model, "%04d-recover" % number)[0]
        if rc != 0:
            self.log("  recovery run failed (exit %d): the fleet starts again from nothing" % rc)
            self.model = {host: {} for host in self.hosts}
            self.rollout(self.model, "%04d-reset" % number)


def main(argv=None, log=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--workdir", default=str(REPO / ".build" / "soak"))
    options = parser.parse_args(argv)
    os.makedirs(options.workdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="run-", dir=options.workdir)
    status = labctl("status", check=False)
    brought_up = status.returncode == 3
    if brought_up:
        labctl("up", "--hosts", str(options.hosts), timeout=300)
    lab = Lab(labctl("inventory").stdout.strip())
    if len(lab.hosts) < options.hosts:
        raise SystemExit("soak: the lab has %d hosts, %d asked for" % (len(lab.hosts), options.hosts))
    soak = Soak(lab, lab.hosts[:options.hosts], random.Random(options.seed), workdir, log)
    start, load = time.monotonic(), os.getloadavg()[0]
    log("soak: seed %d, %d rounds, hosts %s, logs in %s" % (
        options.seed, options.rounds, ",".join(soak.hosts), workdir))
    interrupted = False
    try:
        soak.clear_faults(every=True)
        soak.rollout(soak.model, "start")         # from an empty fleet
        for number in range(1, options.rounds + 1):
            soak.round(number)
    except KeyboardInterrupt:
        interrupted = True
        log("soak: interrupted during round %d" % (soak.rounds + 1))
    finally:
        soak.clear_faults(every=True)
        soak.model = {host: {} for host in soak.hosts}
        soak.rollout(soak.model, "cleanup")
        if brought_up and os.environ.get("NIXFLEET_LAB_KEEP") != "1":
            labctl("down", timeout=300)
    minutes = (time.monotonic() - start) / 60
    log("soak: seed %d, %d rounds in %.1f min (load %.1f at start, %.1f at end)" % (
        options.seed, soak.rounds, minutes, load, os.getloadavg()[0]))
    log("soak: faults injected: %s" % ", ".join("%s %d" % (k, soak.faults[k]) for k in FAULTS))
    log("soak: violations: %d" % len(soak.violations))
    for violation in soak.violations:
        log("  " + violation)
    return 1 if soak.violations or interrupted else 0


if __name__ == "__main__":
    # SIGTERM (a CI time-out) ends the run like ^C: the figures so far are still printed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
