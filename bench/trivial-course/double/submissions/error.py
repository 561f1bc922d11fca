def double(x):
    return x * two
