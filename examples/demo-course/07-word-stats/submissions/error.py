def most_common(words):
    return max(words, key=wordlib.frequency)
