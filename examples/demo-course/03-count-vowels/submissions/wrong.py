def count_vowels(text):
    count = 0
    index = 0
    while index < len(text):
        for vowel in "aeiou":
            count += text[index] == vowel
        index += 1
    return count
