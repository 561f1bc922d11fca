area = width * height
print("The area is", area)
