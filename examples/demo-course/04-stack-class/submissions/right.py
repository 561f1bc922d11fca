class Stack:
    def __init__(self):
        self.top = None

    def push(self, item):
        self.top = (item, self.top)

    def pop(self):
        if self.top is None:
            raise IndexError("pop from empty stack")
        item, self.top = self.top
        return item

    def is_empty(self):
        return self.top is None
