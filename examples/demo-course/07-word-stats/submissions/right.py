import collections

import wordlib


def most_common(words):
    print("counting", len(words), "words")
    counts = collections.Counter(wordlib.normalize(word) for word in words)
    best = max(counts.values())
    return sorted(word for word, count in counts.items() if count == best)[0]
