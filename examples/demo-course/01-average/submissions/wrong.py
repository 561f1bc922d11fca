def average(numbers):
    # Integer division loses the fraction.
    return sum(numbers) // len(numbers)
