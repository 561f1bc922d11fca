def most_common(words):
    """The most frequent normalized word; ties go to the alphabetically first."""
    counts = {}
    for word in words:
        key = wordlib.normalize(word)
        counts[key] = counts.get(key, 0) + 1
    return min(counts, key=lambda word: (-counts[word], word))
