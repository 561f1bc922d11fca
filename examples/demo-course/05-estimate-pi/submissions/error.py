def estimate_pi(terms):
    return 4 * sum((-1) ** k / (2 * k - terms) for k in range(terms))
