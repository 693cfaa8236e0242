"""The emulated container@ unit at run time: real nspawn, kernel objects, traffic, faults."""

import re
import time

import pytest

from emulator_helpers import (HOST, clean_host, ip_json, leader, nixos_container, ok,
                              unit_properties, wait_unit)

HOST_ADDRESS, LOCAL_ADDRESS = "10.233.1.1", "10.233.1.2"
NGINX = "services.nginx.enable = true;"


def http(lab, url):
    """(status code, body) of one GET from the host."""
    done = lab.exec(HOST, "curl", "-s", "-m", "5", "-o", "/dev/stdout", "-w", "\n%{http_code}", url)
    body, _newline, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def wait_http(lab, url, want_code, tries=40):
    for _attempt in range(tries):
        code, body = http(lab, url)
        if code == want_code:
            return code, body
        time.sleep(0.1)
    return code, body


@pytest.fixture(scope="module")
def web(lab):
    """One running nginx container shared by the read-only checks of this module."""
    clean_host(lab)
    ok(lab, "nixos-container", "create", "web", "--config", NGINX)
    ok(lab, "nixos-container", "start", "web")
    yield lab
    clean_host(lab)


@pytest.fixture
def clean(lab):
    """Each test starts on a clean host (the shared `web` is gone then) and leaves one."""
    clean_host(lab)
    yield lab
    clean_host(lab)


def test_host_side_veth_address_and_route(web):
    links = ip_json(web, "addr", "show", "dev", "ve-web")
    addresses = [(a["family"], a["local"], a["prefixlen"]) for a in links[0]["addr_info"]
                 if a["family"] == "inet"]
    assert addresses == [("inet", HOST_ADDRESS, 32)]
    assert "UP" in links[0]["flags"]
    routes = ip_json(web, "route", "show", LOCAL_ADDRESS)
    assert [(r["dst"], r["dev"], r.get("scope")) for r in routes] == [(LOCAL_ADDRESS, "ve-web", "link")]


def test_container_side_eth0_and_default_route(web):
    pid = leader(web, "web")
    eth0 = ip_json(web, "addr", "show", "dev", "eth0", netns_pid=pid)
    assert [(a["local"], a["prefixlen"]) for a in eth0[0]["addr_info"] if a["family"] == "inet"] == \
        [(LOCAL_ADDRESS, 32)]
    routes = ip_json(web, "route", "show", netns_pid=pid)
    assert {"dst": "default", "gateway": HOST_ADDRESS, "dev": "eth0"}.items() <= routes[0].items()
    assert "host0" not in [link["ifname"] for link in ip_json(web, "link", "show", netns_pid=pid)]


def test_container_view_through_run(web):
    done = nixos_container(web, "run", "web", "--", "ip", "route")
    assert done.returncode == 0
    assert "default via %s dev eth0" % HOST_ADDRESS in done.stdout


def test_ping_and_http_from_host(web):
    ok(web, "ping", "-c", "1", "-W", "2", LOCAL_ADDRESS)
    assert http(web, "http://%s/" % LOCAL_ADDRESS) == (200, "web generation 1\n")


def test_unit_and_machine_state(web):
    props = unit_properties(web, "web")
    assert (props["ActiveState"], props["SubState"], props["LoadState"], props["Result"]) == \
        ("active", "running", "loaded", "success")
    assert int(props["MainPID"]) > 0 and props["TimeoutStartUSec"] == "1min"
    assert nixos_container(web, "status", "web").stdout == "up\n"
    listing = ok(web, "machinectl", "list").stdout
    # The real machinectl shows the first address and "…" when the machine has more (IPv6).
    assert re.search(r"^web\s+container\s+systemd-nspawn\s+nixos\s+25\.11\s+10\.233\.1\.2…?$",
                     listing, re.M)
    assert ok(web, "systemctl", "is-active", "container@web").stdout == "active\n"


def test_systemctl_show_several_units_and_values(web):
    done = ok(web, "systemctl", "show", "-p", "Id,ActiveState", "container@web",
              "container@nope.service")
    assert done.stdout == ("Id=container@web.service\nActiveState=active\n\n"
                           "Id=container@nope.service\nActiveState=inactive\n")
    value = ok(web, "systemctl", "show", "container@web", "--property=ActiveState", "--value")
    assert value.stdout == "active\n"
    unknown = web.exec(HOST, "systemctl", "start", "foo.service")
    assert (unknown.returncode, unknown.stderr) == (5, "Failed to start foo.service: Unit foo.service not found.\n")


def test_run_quotes_arguments(web):
    done = nixos_container(web, "run", "web", "--", "echo", "it's", "$HOME", "a  b")
    assert (done.returncode, done.stdout) == (0, "it's $HOME a  b\n")
    failing = nixos_container(web, "run", "web", "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7


def test_health_fail_fault(web):
    web.fault(HOST, "health-fail", "web")
    try:
        assert http(web, "http://%s/" % LOCAL_ADDRESS)[0] == 500
    finally:
        ok(web, "rm", "-f", "/run/nixos-lab/faults/health-fail/web")
    assert http(web, "http://%s/" % LOCAL_ADDRESS)[0] == 200


def test_update_reloads_without_touching_network(clean):
    ok(clean, "nixos-container", "create", "web", "--config", NGINX)
    ok(clean, "nixos-container", "start", "web")
    before = ip_json(clean, "link", "show", "dev", "ve-web")[0]["ifindex"]
    pid = leader(clean, "web")
    done = nixos_container(clean, "update", "web", "--config",
                           NGINX + " services.openssh.enable = true;")
    assert (done.returncode, done.stderr) == (0, "reloading container...\n")
    assert ip_json(clean, "link", "show", "dev", "ve-web")[0]["ifindex"] == before
    assert leader(clean, "web") == pid
    assert wait_http(clean, "http://%s/" % LOCAL_ADDRESS, 200) == (200, "web generation 2\n")
    banner = ok(clean, "bash", "-c", "exec 3<>/dev/tcp/%s/22; head -c 8 <&3" % LOCAL_ADDRESS)
    assert banner.stdout == "SSH-2.0-"


def test_stop_removes_veth_and_start_again(clean):
    ok(clean, "nixos-container", "create", "web", "--config", NGINX)
    ok(clean, "nixos-container", "start", "web")
    ok(clean, "nixos-container", "stop", "web")
    assert clean.exec(HOST, "ip", "link", "show", "ve-web").returncode != 0
    props = unit_properties(clean, "web", "ActiveState", "SubState", "MainPID")
    assert props == {"ActiveState": "inactive", "SubState": "dead", "MainPID": "0"}
    ok(clean, "nixos-container", "restart", "web")
    assert http(clean, "http://%s/" % LOCAL_ADDRESS) == (200, "web generation 1\n")


def test_destroy_running_container_terminates_it(clean):
    ok(clean, "nixos-container", "create", "web")
    ok(clean, "nixos-container", "start", "web")
    ok(clean, "nixos-container", "destroy", "web")
    assert clean.exec(HOST, "ip", "link", "show", "ve-web").returncode != 0
    assert unit_properties(clean, "web", "ActiveState") == {"ActiveState": "inactive"}
    assert nixos_container(clean, "list").stdout == ""


def test_port_forward(clean):
    ok(clean, "nixos-container", "create", "fwd", "--config", NGINX, "--port", "tcp:8080:80")
    ok(clean, "nixos-container", "start", "fwd")
    code, body = http(clean, "http://10.250.%s.11:8080/" % lab_id(clean))
    assert (code, body) == (200, "fwd generation 1\n")


def lab_id(lab):
    address = ip_json(lab, "addr", "show", "dev", "eth0")[0]["addr_info"][0]["local"]
    return address.split(".")[2]


def test_show_host_key_with_openssh(clean):
    ok(clean, "nixos-container", "create", "sshc", "--config", "services.openssh.enable = true;")
    ok(clean, "nixos-container", "start", "sshc")
    key = nixos_container(clean, "show-host-key", "sshc")
    assert key.returncode == 0 and key.stdout.startswith("ssh-ed25519 ")


def test_bridged_container_enslaves_vb(clean):
    ok(clean, "ip", "link", "add", "labbr0", "type", "bridge")
    try:
        ok(clean, "nixos-container", "create", "brc", "--bridge", "labbr0")
        ok(clean, "nixos-container", "start", "brc")
        vb = ip_json(clean, "link", "show", "dev", "vb-brc")[0]
        assert vb["master"] == "labbr0"
        assert ip_json(clean, "addr", "show", "dev", "vb-brc")[0].get("addr_info", []) == [] or \
            all(a["family"] == "inet6" for a in ip_json(clean, "addr", "show", "dev", "vb-brc")[0]["addr_info"])
        assert clean.exec(HOST, "ip", "link", "show", "ve-brc").returncode != 0
    finally:
        clean_host(clean)
        ok(clean, "ip", "link", "del", "labbr0")


# ------------------------------------------------------------------ faults

def test_start_fail_fault(clean):
    ok(clean, "nixos-container", "create", "web")
    clean.fault(HOST, "start-fail", "web")
    done = nixos_container(clean, "start", "web")
    assert done.returncode == 1
    assert done.stderr.startswith("Job for container@web.service failed because the control "
                                  "process exited with error code.\n")
    # Restart=on-failure (facts §5.2, as NixOS's unit has it): systemd retries the start until
    # the default start limit (5 starts in 10 s), then the unit is failed.
    props = wait_unit(clean, "web", "failed")
    assert props == {"ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "NRestarts": "5"}
    assert clean.exec(HOST, "ip", "link", "show", "ve-web").returncode != 0
    # Within those 10 s even a start that would succeed is refused, until reset-failed.
    clean.fault(HOST, "clear")
    assert nixos_container(clean, "start", "web").returncode == 1
    journal = ok(clean, "journalctl", "-u", "container@web.service", "-o", "cat", "--no-pager").stdout
    assert "container@web.service: Start request repeated too quickly." in journal
    ok(clean, "systemctl", "reset-failed", "container@web.service")
    ok(clean, "nixos-container", "start", "web")
    assert nixos_container(clean, "status", "web").stdout == "up\n"


def test_slow_start_fault_delays_ready(clean):
    ok(clean, "nixos-container", "create", "slow")
    clean.fault(HOST, "slow-start", "slow", "2")
    started = time.monotonic()
    ok(clean, "nixos-container", "start", "slow")
    assert time.monotonic() - started >= 2.0
    assert nixos_container(clean, "status", "slow").stdout == "up\n"


def test_wrong_nspawn_flag_fails_the_unit(clean):
    ok(clean, "nixos-container", "create", "bad")
    ok(clean, "sh", "-c", "echo 'EXTRA_NSPAWN_FLAGS=\"--no-such-flag\"' >> /etc/nixos-containers/bad.conf")
    done = nixos_container(clean, "start", "bad")
    assert done.returncode == 1
    # nspawn's error goes to the host journal under the unit's SyslogIdentifier (facts §5.2).
    assert wait_unit(clean, "bad", "failed")["ActiveState"] == "failed"
    journal = ok(clean, "journalctl", "-u", "container@bad.service", "-t", "container bad",
                 "-o", "cat", "--no-pager").stdout
    assert "unrecognized option '--no-such-flag'" in journal


# A guest's networking and /etc files, applied at its boot and at each switch (nixlab/guestconfig.py).
GUEST_BASE = ('networking.interfaces.eth0.ipv4.addresses = [ { address = "192.168.50.2"; prefixLength = 24; } ];'
              ' networking.bridges.br7.interfaces = [ ];'
              ' networking.interfaces.br7.ipv4.addresses = [ { address = "192.168.51.1"; prefixLength = 24; } ];'
              ' environment.etc.check.text = "one"; environment.etc."lab/old".text = "old";')
GUEST_NEXT = ('networking.interfaces.eth0.ipv4.addresses = [ { address = "192.168.50.3"; prefixLength = 24; } ];'
              ' environment.etc.check.text = "two";')


def test_guest_networking_and_etc_follow_each_switch(clean):
    ok(clean, "nixos-container", "create", "net", "--config", GUEST_BASE)
    ok(clean, "nixos-container", "start", "net")

    def inside(*argv):
        return ok(clean, "nixos-container", "run", "net", "--", *argv).stdout

    addresses = inside("ip", "-4", "addr", "show", "dev", "eth0")
    assert "inet 192.168.50.2/24" in addresses and "inet %s" % LOCAL_ADDRESS in addresses
    assert "inet 192.168.51.1/24" in inside("ip", "addr", "show", "dev", "br7")
    assert inside("cat", "/etc/check") == "one" and inside("cat", "/etc/lab/old") == "old"
    pid = leader(clean, "net")
    done = nixos_container(clean, "update", "net", "--config", GUEST_NEXT)
    assert done.returncode == 0, done.stderr
    assert leader(clean, "net") == pid                   # a reload: switch-to-configuration test
    addresses = inside("ip", "-4", "addr", "show", "dev", "eth0")
    # What the previous system set and this one does not is gone; the unit's own address stays.
    assert "inet 192.168.50.3/24" in addresses and "192.168.50.2" not in addresses, addresses
    assert "inet %s" % LOCAL_ADDRESS in addresses
    assert nixos_container(clean, "run", "net", "--", "ip", "link", "show", "br7").returncode != 0
    assert inside("cat", "/etc/check") == "two"
    assert nixos_container(clean, "run", "net", "--", "test", "-e", "/etc/lab/old").returncode != 0
