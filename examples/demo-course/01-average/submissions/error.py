def average(numbers):
    return sum(numbers) / count
