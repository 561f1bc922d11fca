def count_vowels(text):
    count = 0
    for letter in text:
        if letter in VOWELS:
            count += 1
    return count
