area = width * height
print("Area:", area)
