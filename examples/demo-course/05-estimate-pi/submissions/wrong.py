def estimate_pi(terms):
    return "roughly 3.14"
