# width and height are given
area = height * width
print("The area is", area)
