"""nat: masquerade and a port forward on host1, proven with real packets (as
tests/integration/modules/test_nixos_container_nat.py does): the outside namespace answers with
the source address it sees, and requests to host1:8080 come from the outside and from host2.
"""


def address(lab_host, name):
    return lab_host(name).ansible.get_variables()['ansible_host']


def test_outside_cannot_route_to_containers(controller, outside_netns):
    # The outside has no route to 10.233.0.0/16: an answer to a container proves masquerade.
    route = controller.run('ip netns exec %s ip route get 10.233.1.2', outside_netns)
    assert route.rc != 0 and 'unreachable' in route.stderr


def test_container_reaches_the_outside_as_the_host(lab_host):
    host1 = lab_host('host1')
    outside = host1.ansible.get_variables()['lab_outside_address']
    seen = host1.check_output('nixos-container run web -- wget -qO- %s', 'http://%s/' % outside)
    assert seen == 'client=%s' % address(lab_host, 'host1')


def test_forward_from_the_outside(controller, lab_host, outside_netns):
    body = controller.check_output('ip netns exec %s curl -s -m 3 %s', outside_netns,
                                   'http://%s:8080/' % address(lab_host, 'host1'))
    assert body == 'web generation 1'


def test_forward_from_another_host(lab_host, http_get):
    assert http_get(lab_host('host2'), address(lab_host, 'host1'), 8080) == 'web generation 1'


def test_nat_is_host1_only(lab_host):
    rules = lab_host('host1').check_output('nft list ruleset')
    assert 'dnat to 10.233.1.2:80' in rules and 'masquerade' in rules
    assert lab_host('host1').check_output('sysctl -n net.ipv4.conf.all.forwarding') == '1'
    # host2 was not converged: no container and no NAT table of ours.
    assert 'nixfleet_nat' not in lab_host('host2').check_output('nft list ruleset')
    assert lab_host('host2').check_output('nixos-container list') == ''
