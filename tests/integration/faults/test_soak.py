"""The short fault soak of `make test` (the long one is `make soak ROUNDS=200`, docs/soak.md):
twelve rounds, so every fault kind hits twice, on the session lab's first two hosts."""

import soak

ROUNDS = 12
SEED = 1234


def test_short_fault_soak_finds_no_violation(fresh):
    lines = []
    status = soak.main(['--rounds', str(ROUNDS), '--seed', str(SEED), '--hosts', '2'], log=lines.append)
    report = '\n'.join(lines)
    assert ' %d rounds in ' % ROUNDS in report, report
    faults = next(line for line in lines if line.startswith('soak: faults injected: '))
    counts = dict(item.rsplit(' ', 1) for item in faults.split(': ', 2)[2].split(', '))
    assert counts == {kind: '2' for kind in soak.FAULTS}, report
    assert status == 0, report
