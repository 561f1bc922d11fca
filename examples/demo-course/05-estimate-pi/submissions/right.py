def estimate_pi(terms):
    total = 0.0
	for k in range(terms):
	    total += (-1) ** k / (2 * k + 1)
    return 4 * total
