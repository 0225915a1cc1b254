"""``mmoe bench``: named performance cases, each a set of variants timed side by side in one process.

Every ratio is measured in the same run, variants interleaved round by round after a warm-up, and
reported as the median (and quartiles) of per-round ratios, so load from other processes on the
machine affects numerator and denominator alike. ``cases`` lists the cases; ``runner`` runs them.
"""
