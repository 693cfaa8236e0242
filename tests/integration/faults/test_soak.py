"""The short fault soak of `make test` (the long one is `make soak ROUNDS=200`, docs/soak.md):
twelve rounds, so every fault kind hits twice, on the session lab's first two hosts."""

import soak

ROUNDS = 12
SEED = 1234


def test_short_fault_soak_finds_no_violation(fresh):
    lines = []
    status = soak.main(['--rounds', str(ROUNDS), '--seed', str(SEED), '--hosts', '2'], log=lines.append)
    report = '\n'.join(lines)
    assert 'soak: %d rounds' % ROUNDS in report or ' %d rounds in ' % ROUNDS in report, report
    assert all(' %s 2' % kind in report for kind in soak.FAULTS), report
    assert status == 0, report
