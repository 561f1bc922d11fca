def count_vowels(text):
    return sum(1 for letter in text.lower() if letter in "aeiou")
