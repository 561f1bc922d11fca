def most_common(words):
    # Forgets to normalize: "The" and "the" are counted apart.
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return max(counts, key=counts.get)
