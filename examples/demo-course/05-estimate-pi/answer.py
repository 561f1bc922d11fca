def estimate_pi(terms):
    """Leibniz series: pi = 4 * (1 - 1/3 + 1/5 - ...)."""
    return 4 * sum((-1) ** k / (2 * k + 1) for k in range(terms))
