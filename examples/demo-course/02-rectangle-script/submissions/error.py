area = widht * height
print("The area is", area)
