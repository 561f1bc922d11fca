# A for loop, no while loop: "while" in this comment and string is fine.
HINT = "not a while loop"

def count_vowels(text):
    count = 0
    for letter in text.lower():
        if letter in "aeiou":
            count += 1
    return count
