"""Search progress lines: the budget left in the unit that ends the search, and an ETA."""

from nasnet_rl import progress


def test_a_children_budget_counts_children_and_gives_an_eta():
  assert progress.remaining(13, 40, 100, 720) == "13/40 trained, 27 to go, ETA 3.5 min"
  assert progress.remaining(3, 300, 1.2, None) == "3/300 trained, 297 to go, ETA 2.0 min"


def test_a_time_budget_that_ends_first_is_named():
  line = progress.remaining(13, 40, 600, 720)
  assert line == ("13/40 trained; time ends the search: 2.0 min of 12.0 min left, "
                  "~2 more children")
  assert progress.remaining(0, 40, 5, 720) == "0/40 trained, 11.9 min of 12.0 min left"


def test_the_child_line_has_reward_best_and_budget():
  line = progress.child_line(13, 0.73, " (cached)", 0.749, 9, "14/40 trained")
  assert line == "child 13: reward 0.7300 (cached) | best 0.7490 (child 9) | 14/40 trained"
  assert "no best yet" in progress.child_line(0, 0.0, " [failed: nan]", None, None, "")
