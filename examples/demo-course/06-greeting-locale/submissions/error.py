def greet(name):
    return "Hello, " + name.upper() + 1
