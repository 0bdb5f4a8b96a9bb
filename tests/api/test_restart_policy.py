"""The supervisor's restart policy: back off in a crash loop, ride out an outage, give up on a
real fault."""

from __future__ import annotations

from api.supervisor import RestartPolicy


def test_a_child_that_ran_for_a_while_is_restarted_at_once_every_time() -> None:
    policy = RestartPolicy()
    now = 1_000.0
    for _ in range(20):
        assert policy.exited(now) == 0.0
        now += 61.0  # it stayed up longer than healthy_after before dying again


def test_a_crash_loop_backs_off_to_the_cap_and_then_gives_up() -> None:
    policy = RestartPolicy()
    now = 0.0
    delays = []
    while (delay := policy.exited(now)) is not None:
        delays.append(delay)
        now += delay + 1.0  # started after the delay, died a second later
        assert now < 1_000, "never gave up"
    assert delays[:8] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(delays) == 30.0
    # It gave up only after failing for give_up_after seconds, not after a count of deaths.
    assert now >= policy.give_up_after


def test_an_outage_shorter_than_the_limit_is_ridden_out() -> None:
    # The database is down for four minutes: the child keeps dying at start-up, then comes
    # back and stays up; a later death starts the count afresh.
    policy = RestartPolicy()
    now = 0.0
    while now < 240.0:
        delay = policy.exited(now)
        assert delay is not None
        now += delay + 0.5
    now += 3_600.0  # up for an hour
    assert policy.exited(now) == 0.0
    assert policy.exited(now + 1.0) == 0.5
